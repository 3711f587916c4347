import type { CodegenConfig } from "@graphql-codegen/cli";

// Typed operations from the committed schema (tests/web keeps it equal to the server's).
// documentMode "string": operations are sent as strings, so the graphql runtime stays out
// of the bundle.
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
    "src/gql/": { ...typed, documents: ["src/**/*.graphql"] },
    // The TypeScript client example (docs/clients/typescript), typed the same way from
    // the same schema; it is type-checked with the dashboard but is no part of its bundle.
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
