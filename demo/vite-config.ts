import { fileURLToPath } from "node:url";
import type { InlineConfig } from "vite";

const demoDir = fileURLToPath(new URL("./", import.meta.url));
const repoRoot = fileURLToPath(new URL("../", import.meta.url));

/**
 * The demo's Vite set-up, shared by `npm run demo` (`serve.ts`) and the browser test. The page
 * imports the SDK by its package name, as an app would; the aliases point those names at `src/`, so
 * a fresh clone runs the demo without building `dist/` first.
 *
 * crypto-wasm stays out of dependency pre-bundling: its browser entry finds its `.wasm` next to
 * itself through `import.meta.url`, which only holds while it is served from its own directory.
 */
export function demoViteConfig(server: { host: string; port: number; live: boolean }): InlineConfig {
  return {
    configFile: false,
    root: demoDir,
    cacheDir: `${repoRoot}node_modules/.vite-demo`,
    logLevel: "warn",
    clearScreen: false,
    appType: "spa",
    resolve: {
      alias: [
        { find: /^matrix-e2ee-devices\/testing$/, replacement: `${repoRoot}src/testing/index.ts` },
        { find: /^matrix-e2ee-devices\/advanced$/, replacement: `${repoRoot}src/advanced.ts` },
        { find: /^matrix-e2ee-devices$/, replacement: `${repoRoot}src/index.ts` },
      ],
    },
    server: {
      host: server.host,
      port: server.port,
      // An explicit port is a promise to whoever opens the URL: fail rather than move.
      strictPort: server.port !== 0,
      ...(server.live ? {} : { hmr: false, watch: null }),
      fs: { allow: [repoRoot] },
    },
    optimizeDeps: {
      // Scanned up front (through the aliases into src/), so the first visit does not discover a
      // dependency mid-load and reload the page.
      entries: ["index.html"],
      exclude: ["@matrix-org/matrix-sdk-crypto-wasm"],
    },
  };
}
