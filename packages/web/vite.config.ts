import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  // The API client is a workspace package: bundle its TypeScript source.
  resolve: { conditions: ["source"] },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Hashed file names: the daemon serves them with a year-long cache.
    assetsDir: "assets",
    reportCompressedSize: true,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:5309", "/tls": "http://127.0.0.1:5309" },
  },
});
