import { Worker } from "node:worker_threads";
import { nodeEndpoint } from "./node-endpoint.js";
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

/** Where the worker comes from: by default the package's own script. */
export interface WorkerClientPlacement {
  /** App code the worker runs first, making the options that cannot cross (`WorkerSetup`). */
  setup?: WorkerSetup;
  /** Options for the worker thread (`resourceLimits`, `env`, …); `execArgv` as Node takes it. */
  workerOptions?: import("node:worker_threads").WorkerOptions;
}

/**
 * Creates the client inside a Node worker thread (Electron's main process, services): the same
 * client as in a browser worker, its crypto work off the event loop of the calling thread. Same
 * options as `createE2eeClient` but for those that cannot cross a thread (`fetch`, `clock`,
 * `random`, `olmMachine`, `stateStore`: `invalid_options`; make them in the worker with `setup`).
 * Node has no IndexedDB: the machine is in memory unless the worker's environment provides one.
 */
export async function createE2eeWorkerClient(
  options: CreateE2eeWorkerClientOptions,
  placement: WorkerClientPlacement = {},
): Promise<E2eeWorkerClient> {
  const { url, execArgv } = workerScript();
  const worker = new Worker(url, {
    ...placement.workerOptions,
    execArgv: [...execArgv, ...(placement.workerOptions?.execArgv ?? [])],
  });
  return connectWorkerClient(
    {
      endpoint: nodeEndpoint(worker),
      terminate: async () => {
        await worker.terminate();
      },
      onDeath: (listener) => {
        worker.once("error", listener);
        worker.once("exit", (code) => listener(new Error(`the worker exited with code ${code}`)));
      },
    },
    options,
    placement.setup,
  );
}

/**
 * The package's worker script. Run from the TypeScript sources (this repository's own tests), the
 * script is a `.ts` file and the thread loads it through tsx, as the tests themselves run.
 */
function workerScript(): { url: URL; execArgv: string[] } {
  if (import.meta.url.endsWith(".ts")) {
    return { url: new URL("./node-worker.ts", import.meta.url), execArgv: ["--import", "tsx"] };
  }
  return { url: new URL("./node-worker.js", import.meta.url), execArgv: [] };
}
