/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` proxies like nginx does in the shipped image: /api to a local todo-api
// (`cargo run -p todo-api`, port 3001) and /otlp to a local Collector (OTLP/HTTP 4318).
const api = process.env.TODO_API_URL ?? "http://127.0.0.1:3001";
const collector = process.env.OTEL_COLLECTOR_URL ?? "http://127.0.0.1:4318";

export default defineConfig({
  plugins: [react()],
  server: {
    port: 5173,
    proxy: {
      "/api": api,
      "/otlp": { target: collector, rewrite: (p) => p.replace(/^\/otlp/, "") },
    },
  },
  build: { outDir: "dist", sourcemap: true },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    restoreMocks: true,
  },
});
