import { describe, it } from "vitest";
import { createE2eeClient, type E2eeClient } from "../../../src/client.js";
import type { CreateE2eeClientOptions } from "../../../src/client-options.js";
import { ManualClock } from "../../../src/testing/index.js";
import {
  type CreateE2eeWorkerClientOptions,
  createE2eeWorkerClient,
  type E2eeWorkerClient,
} from "../../../src/worker/node.js";
import type * as Ops from "./in-worker-ops.js";
import type { TestSetup } from "./in-worker-setup.js";

/**
 * Where the facade's integration tests run the client: in the test's own thread (the `node`
 * project), or inside a Node worker thread (the `worker` project sets `E2EE_CLIENT_MODE=worker`),
 * driven over `src/worker/node.ts` as an app would drive it.
 */
const OPS_URL = new URL("./in-worker-ops.ts", import.meta.url).href;
const SETUP_URL = new URL("./in-worker-setup.ts", import.meta.url).href;

export const clientMode: "thread" | "worker" =
  process.env.E2EE_CLIENT_MODE === "worker" ? "worker" : "thread";

export const inWorkerMode = clientMode === "worker";

/**
 * A client of either mode. Calls that are synchronous in-thread (`deviceLists.trust`, `trustAll`,
 * `report`) return a promise in a worker: tests `await` them, which is harmless in-thread.
 */
export type TestClient = E2eeClient | E2eeWorkerClient;

export function isWorkerClient(client: TestClient): client is E2eeWorkerClient {
  return "runInWorker" in client;
}

/** Worker clients the tests closed (see `createTestClient`). */
const closed = new WeakSet<E2eeWorkerClient>();

/**
 * A `ManualClock` a test advances, whichever mode its client runs in. In-thread it is the clock
 * the client is given. In a worker, where a clock cannot cross, the worker makes a `ManualClock`
 * of its own at the same time (the setup module, in-worker-setup.ts) and `advance` moves both:
 * `now()` reads this thread's copy, which moves in step since only the test advances time.
 */
export class TestClock extends ManualClock {
  readonly #workers: E2eeWorkerClient[] = [];

  /** A worker client whose own clock follows this one. */
  follow(client: E2eeWorkerClient): void {
    this.#workers.push(client);
  }

  override async advance(ms: number): Promise<void> {
    await super.advance(ms);
    for (const client of this.#open()) await client.runInWorker(OPS_URL, "advanceClock", ms);
  }

  /** How many sleeps wait on the client's clock (its worker's, in a worker). */
  async sleeping(): Promise<number> {
    let count = this.pendingSleeps;
    for (const client of this.#open()) count += await client.runInWorker<number>(OPS_URL, "pendingSleeps");
    return count;
  }

  /** The followed clients not closed yet: a closed client's clock no longer matters. */
  #open(): E2eeWorkerClient[] {
    return this.#workers.filter((client) => !closed.has(client));
  }
}

/**
 * The client of this mode with `options`. In a worker, options that cannot cross a thread
 * (`fetch`, `clock`, `random`, `olmMachine`, `stateStore`) are refused by the worker client with
 * `invalid_options`: a `TestClock` is made again inside the worker by the setup module; the tests
 * that need the others run in-thread only (`itInThread`).
 */
export async function createTestClient(options: CreateE2eeClientOptions): Promise<TestClient> {
  if (!inWorkerMode) return createE2eeClient(options);
  const { clock, ...rest } = options;
  if (clock !== undefined && !(clock instanceof TestClock))
    throw new Error("in a worker, a test's clock must be a TestClock");
  // The worker's clock starts where the test's clock is now, so their `now()` agree.
  const setup: TestSetup = clock === undefined ? {} : { manualClockStartMs: clock.now() };
  const client = await createE2eeWorkerClient(rest as CreateE2eeWorkerClientOptions, {
    setup: { module: SETUP_URL, export: "testOptions", args: [setup] },
  });
  clock?.follow(client);
  const close = client.close;
  return Object.freeze({
    ...client,
    close: async () => {
      closed.add(client);
      await close();
    },
  }) as E2eeWorkerClient;
}

/**
 * Options that only make a test deterministic in-thread (a `ManualClock` nobody advances, fixed
 * jitter): given in-thread, left out in a worker, where they cannot cross.
 */
export function inThreadOnlyOptions(
  options: Partial<CreateE2eeClientOptions>,
): Partial<CreateE2eeClientOptions> {
  return inWorkerMode ? {} : options;
}

/** The in-thread client of a test that runs only in-thread (`itInThread`). */
export function inThreadClient(client: TestClient): E2eeClient {
  if (isWorkerClient(client))
    throw new Error("this step reads the client's thread: run the test with itInThread");
  return client;
}

type OpName = {
  [K in keyof typeof Ops]: (typeof Ops)[K] extends (client: E2eeClient, ...args: never[]) => unknown
    ? K
    : never;
}[keyof typeof Ops];
type OpArgs<K extends OpName> = (typeof Ops)[K] extends (client: E2eeClient, ...args: infer A) => unknown
  ? A
  : never;
type OpResult<K extends OpName> = Awaited<ReturnType<(typeof Ops)[K]>>;

/**
 * Runs one of `in-worker-ops.ts`'s functions next to the client: in-thread, called with the
 * client; in a worker, inside the worker through `runInWorker` (wasm objects cannot cross a
 * thread, so the functions take and return data). The same code runs in both modes.
 */
export async function inClient<K extends OpName>(
  client: TestClient,
  name: K,
  ...args: OpArgs<K>
): Promise<OpResult<K>> {
  if (isWorkerClient(client)) return client.runInWorker<OpResult<K>>(OPS_URL, name, ...args);
  const ops = await import("./in-worker-ops.js");
  const fn = ops[name] as unknown as (
    client: E2eeClient,
    ...args: OpArgs<K>
  ) => Promise<OpResult<K>> | OpResult<K>;
  return await fn(client, ...args);
}

/**
 * A test that cannot run with the client in a worker: in the `worker` project it is skipped, and
 * `reason` says why (it hands the client a `fetch`, a `ManualClock`, a `stateStore`, or reads the
 * client's internals, none of which cross a thread). Use as `itInThread("reason")("name", fn)`.
 */
export function itInThread(reason: string): typeof it {
  if (reason.trim() === "") throw new Error("itInThread needs a reason");
  return inWorkerMode ? (it.skip as typeof it) : it;
}

/** `itInThread` for a whole block whose tests share what cannot cross (one clock, one store). */
export function describeInThread(reason: string): typeof describe {
  if (reason.trim() === "") throw new Error("describeInThread needs a reason");
  return inWorkerMode ? (describe.skip as typeof describe) : describe;
}
