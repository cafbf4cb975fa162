/**
 * The worker script of `createE2eeWorkerClient` in Node (`worker_threads`: Electron's main
 * process, services): serves the client on the parent port.
 */
import { parentPort } from "node:worker_threads";
import { nodeEndpoint } from "./node-endpoint.js";
import { serveClient } from "./worker-host.js";

if (parentPort === null) throw new Error("node-worker.js runs only as a worker thread");
serveClient(nodeEndpoint(parentPort));
