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
const typed = {
  preset: "client",
  presetConfig: { fragmentMasking: false },
  config: {
    documentMode: "string",
    enumsAsTypes: true,
    useTypeImports: true,
    scalars: { DateTime: "string", JSON: "unknown" },
    strictScalars: true,
  },
} as const;

const config: CodegenConfig = {
  schema: "schema.graphql",
  ignoreNoDocuments: false,
  generates: {
    "src/gql/": {
      ...typed,
      presetConfig: {
        ...typed.presetConfig,
        persistedDocuments: {
          mode: "replaceDocumentWithHash",
          hashAlgorithm: (body: string) => createHash("sha256").update(body).digest("hex"),
        },
      },
      documents: ["src/**/*.graphql"],
    },
    // The TypeScript client example (docs/clients/typescript), typed the same way from
    // the same schema; it is type-checked with the dashboard but is no part of its bundle
    // (it sends whole documents: no persisted hashes).
    "../docs/clients/typescript/gql/": {
      ...typed,
      // Node runs it as ES modules: relative imports need their ".js".
      config: { ...typed.config, emitLegacyCommonJSImports: false },
      documents: ["../docs/clients/typescript/*.graphql"],
    },
  },
  hooks: {},
};
export default config;
