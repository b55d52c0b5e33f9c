/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The gateway serves dist/: index.html at "/", everything else under /assets/ (appliance/gateway/webui.py).
// `npm run dev` proxies the API to a running appliance on this machine.
const appliance = process.env.MYNAH_URL ?? "http://127.0.0.1:8765";

export default defineConfig({
  plugins: [react()],
  publicDir: false,
  build: { outDir: "dist", assetsDir: "assets", emptyOutDir: true, sourcemap: true },
  server: {
    proxy: {
      ...Object.fromEntries(
        ["/api", "/chat", "/health", "/train-voice", "/generate-avatar", "/ca.pem"].map((path) => [path, appliance]),
      ),
      "/voice-chat": { target: appliance, ws: true },
    },
  },
  test: { environment: "jsdom", include: ["src/**/*.test.{ts,tsx}"] },
});
