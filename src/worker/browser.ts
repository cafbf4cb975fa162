import {
  type CreateE2eeWorkerClientOptions,
  connectWorkerClient,
  type E2eeWorkerClient,
  type WorkerSetup,
} from "./remote-client.js";

export type {
  CreateE2eeWorkerClientOptions,
  E2eeWorkerClient,
  Promisified,
  WorkerSetup,
} from "./remote-client.js";

/** Where the worker comes from: by default the package's own script, as a module worker. */
export interface WorkerClientPlacement {
  /** App code the worker runs first, making the options that cannot cross (`WorkerSetup`). */
  setup?: WorkerSetup;
  /**
   * A worker the app made itself, running `matrix-e2ee-devices/worker-script` (e.g. for a bundler
   * that needs its own `new Worker(new URL(…, import.meta.url))` line). Ended by `close()`.
   */
  worker?: Worker;
}

/**
 * Creates the client inside a dedicated Web Worker: the transport, the `OlmMachine` on IndexedDB,
 * the sync loop, drains, rotation, rooms and device lists all run there, and this thread only
 * receives messages. Same options as `createE2eeClient` but for those that cannot cross a thread
 * (`fetch`, `clock`, `random`, `olmMachine`, `stateStore`: `invalid_options`; make them in the worker
 * with `setup`); a second worker on
 * the same `cryptoStore` fails with `crypto_store_in_use`.
 */
export async function createE2eeWorkerClient(
  options: CreateE2eeWorkerClientOptions,
  placement: WorkerClientPlacement = {},
): Promise<E2eeWorkerClient> {
  // The literal `new Worker(new URL(…, import.meta.url))` form is what bundlers (Vite, webpack,
  // Rollup, esbuild) recognise and emit as a worker chunk.
  const worker =
    placement.worker ?? new Worker(new URL("./browser-worker.js", import.meta.url), { type: "module" });
  return connectWorkerClient(
    {
      endpoint: worker,
      terminate: () => worker.terminate(),
      onDeath: (listener) => {
        worker.addEventListener("error", (event) => listener(event.error ?? new Error(event.message)), {
          once: true,
        });
      },
    },
    options,
    placement.setup,
  );
}
