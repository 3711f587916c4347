/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The dashboard is served by FlowSync at /ui/; its built files are committed under
// flowsync/web/dist so that running FlowSync never needs Node.
export default defineConfig({
  base: "/ui/",
  plugins: [react()],
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
