import type { E2eeClient } from "../../../src/client.js";

/** Runs inside the worker (`runInWorker`): reads the machine the app's thread cannot reach. */
export async function machineIds(client: E2eeClient, suffix: string): Promise<string> {
  return `${client.olmMachine.userId.toString()}|${client.olmMachine.deviceId.toString()}|${suffix}`;
}

/** Calls back the app's thread with a value, and returns what the app answered. */
export async function askApp(_client: E2eeClient, ask: (n: number) => Promise<number>): Promise<number> {
  return (await ask(20)) + 1;
}

/** Fails inside the worker with one of the SDK's errors. */
export async function failTyped(client: E2eeClient): Promise<never> {
  client.deviceLists.trust("not a user id");
  throw new Error("unreachable");
}

/** Ends the worker thread, as a crash would. */
export function crash(): Promise<never> {
  process.exit(3);
}

/** Resolves once `signal` (forwarded from the app's thread) aborts, with its reason's message. */
export function waitForAbort(_client: E2eeClient, signal: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    signal.addEventListener("abort", () => resolve(String((signal.reason as Error).message)), { once: true });
  });
}
