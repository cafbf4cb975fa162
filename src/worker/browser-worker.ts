/**
 * The worker script of `createE2eeWorkerClient` in a browser (or an Electron renderer): serves the
 * client on the worker's own port. Loaded by `browser.ts` as a module worker.
 */
import { serveClient } from "./worker-host.js";

serveClient(globalThis as unknown as Parameters<typeof serveClient>[0]);
