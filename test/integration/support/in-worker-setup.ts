import type { CreateE2eeClientOptions } from "../../../src/client-options.js";
import { ManualClock } from "../../../src/testing/index.js";

/**
 * The setup module of the `worker` project's clients (`WorkerSetup`): inside the worker it makes
 * what a test would have handed the client in-thread but cannot cross a thread — here a
 * `ManualClock` — and keeps it where `in-worker-ops.ts` finds it (`workerClock`), so the test
 * advances the worker's clock through `inClient`. One client per worker, so one clock per worker.
 */

export interface TestSetup {
  /** A `ManualClock` starting at this time, as the test's own `TestClock` does. */
  manualClockStartMs?: number;
}

let clock: ManualClock | undefined;

export function testOptions(setup: TestSetup): Partial<CreateE2eeClientOptions> {
  if (setup.manualClockStartMs === undefined) return {};
  clock = new ManualClock(setup.manualClockStartMs);
  return { clock };
}

/** The worker's `ManualClock`; only a client opened with one has it. */
export function workerClock(): ManualClock {
  if (clock === undefined) throw new Error("this worker's client has no ManualClock");
  return clock;
}
