import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { createServer, type ViteDevServer } from "vite";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const pagesDir = fileURLToPath(new URL("../pages/", import.meta.url));

export interface PageServer {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  readonly origin: string;
  close(): Promise<void>;
}

/**
 * Serves `test/browser/pages/` with Vite, which compiles the pages' TypeScript and the `src/` they
 * import on request. Port 0 lets the OS pick, so parallel runs never collide.
 *
 * crypto-wasm is kept out of dependency pre-bundling: its browser entry (`index.mjs`, the `import`
 * condition) finds its `.wasm` with `new URL(…, import.meta.url)`, which only points at the file
 * while the module is served from its own directory. The `matrix-org:wasm-esm` entry instead imports
 * the `.wasm` as an ES module (the WebAssembly ESM-integration proposal), which neither Vite nor
 * Chromium does natively, so it is not used.
 */
export async function startPageServer(): Promise<PageServer> {
  const server: ViteDevServer = await createServer({
    configFile: false,
    root: pagesDir,
    // Apart from Vitest's own cache, so the two never rebuild each other's pre-bundles.
    cacheDir: `${repoRoot}node_modules/.vite-browser-tests`,
    logLevel: "warn",
    clearScreen: false,
    // No SPA fallback: a page that does not exist is a 404, not some other page.
    appType: "mpa",
    server: {
      host: "127.0.0.1",
      port: 0,
      hmr: false,
      // Pages are compiled per request and never change during a run: no file watcher.
      watch: null,
      fs: { allow: [repoRoot] },
    },
    optimizeDeps: {
      // Every page is an entry, so pre-bundling is settled before the first page loads instead of
      // being discovered mid-test (which makes Vite reload the page under the test's feet).
      entries: ["*.html"],
      exclude: ["@matrix-org/matrix-sdk-crypto-wasm"],
    },
  });
  await server.listen();
  const address = server.httpServer?.address() as AddressInfo | null;
  if (address === null || typeof address !== "object") {
    await server.close();
    throw new Error("the Vite page server did not report a listening address");
  }
  return {
    origin: `http://127.0.0.1:${address.port}`,
    close: () => server.close(),
  };
}
