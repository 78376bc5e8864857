// Builds the single-page app into the Python package (src/arco/web/static/), which
// `arco serve` and `arco dev` serve at "/". DuckDB-WASM's .wasm and worker files are
// imported with `?url`, so Vite copies them into assets/ and the browser loads them
// from Arco's own origin: no CDN, works offline.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "../src/arco/web/static",
    emptyOutDir: true,
    target: "es2022",
    // The DuckDB bundles are large by nature; keep the warning for our own code only.
    chunkSizeWarningLimit: 2048,
    assetsInlineLimit: 0,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8484", "/blob": "http://127.0.0.1:8484" },
  },
});
