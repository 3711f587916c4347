/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { Kind, parse, type OperationDefinitionNode } from "graphql";
import { defineConfig, type Plugin } from "vite";

// The manifest of the dashboard's operations that FlowSync ships and loads at start
// (flowsync/schema/safelist.py): codegen's persisted-documents.json (hash -> body) in
// Apollo's persisted query manifest format, beside the bundle in dist.
function persistedOperations(): Plugin {
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return {
    name: "flowsync-persisted-operations",
    apply: "build",
    generateBundle() {
      const source = new URL("./src/gql/persisted-documents.json", import.meta.url);
      const bodies = JSON.parse(readFileSync(source, "utf8")) as Record<string, string>;
      const operations = Object.entries(bodies)
        .map(([id, body]) => {
          if (createHash("sha256").update(body).digest("hex") !== id) {
            throw new Error(`persisted-documents.json: ${id} is not the SHA-256 of its body`);
          }
          const op = parse(body).definitions.find(
            (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
          );
          if (!op?.name) throw new Error(`persisted-documents.json: ${id} has no named operation`);
          return { id, name: op.name.value, type: op.operation, body };
        })
        .sort((a, b) => cmp(a.name, b.name) || cmp(a.id, b.id));
      const manifest = { format: "apollo-persisted-query-manifest", version: 1, operations };
      this.emitFile({
        type: "asset",
        fileName: "persisted-operations.json",
        source: JSON.stringify(manifest, null, 2) + "\n",
      });
    },
  };
}

// The dashboard is served by FlowSync at /ui/; its built files are committed under
// flowsync/web/dist so that running FlowSync never needs Node.
export default defineConfig({
  base: "/ui/",
  plugins: [react(), persistedOperations()],
  build: {
    outDir: "../flowsync/web/dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 800,
  },
  worker: { format: "es" },
  server: {
    proxy: {
      "/graphql": { target: "http://127.0.0.1:8000", ws: true },
      "/api": { target: "http://127.0.0.1:8000" },
      // The sign-in page asks the server which OIDC provider to offer.
      "/ui/oidc.json": { target: "http://127.0.0.1:8000" },
    },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["./vitest.setup.ts"],
  },
});
