import type { CodegenConfig } from "@graphql-codegen/cli";
import { createHash } from "node:crypto";

// Typed operations from the committed schema (tests/web keeps it equal to the server's).
// documentMode "string": operations are sent as strings, so the graphql runtime stays out
// of the bundle.
// persistedDocuments: each document is its hash in the bundle (`__meta__.hash`), its text
// in src/gql/persisted-documents.json (hash -> body). The hash is the plain hex SHA-256 of
// the body, as Apollo's APQ and FlowSync's safelist take it (the preset's own "sha256"
// prefixes "sha256:"). The web build turns the JSON into the manifest FlowSync ships
// (flowsync/web/dist/persisted-operations.json, see vite.config.ts).
const config: CodegenConfig = {
  schema: "schema.graphql",
  documents: ["src/**/*.graphql"],
  ignoreNoDocuments: false,
  generates: {
    "src/gql/": {
      preset: "client",
      presetConfig: {
        fragmentMasking: false,
        persistedDocuments: {
          mode: "replaceDocumentWithHash",
          hashAlgorithm: (body: string) => createHash("sha256").update(body).digest("hex"),
        },
      },
      config: {
        documentMode: "string",
        enumsAsTypes: true,
        useTypeImports: true,
        scalars: { DateTime: "string", JSON: "unknown" },
        strictScalars: true,
      },
    },
  },
  hooks: {},
};
export default config;
