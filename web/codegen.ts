import type { CodegenConfig } from "@graphql-codegen/cli";

// Typed operations from the committed schema (tests/web keeps it equal to the server's).
// documentMode "string": operations are sent as strings, so the graphql runtime stays out
// of the bundle.
const config: CodegenConfig = {
  schema: "schema.graphql",
  documents: ["src/**/*.graphql"],
  ignoreNoDocuments: false,
  generates: {
    "src/gql/": {
      preset: "client",
      presetConfig: { fragmentMasking: false },
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
