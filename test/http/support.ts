import { createMatrixHttp, type MatrixHttpOptions } from "../../src/http/matrix-http.js";
import { ManualClock } from "../../src/testing/manual-clock.js";
import { captureLogger, ScriptedFetch } from "./scripted-fetch.js";

/** A token with a recognisable shape, so any leak into messages or logs is easy to spot. */
export const TOKEN = "syt_YWxpY2U_SECRETtokenDoNotLeak_0x1234";

export function setup(options: Partial<MatrixHttpOptions> = {}) {
  const clock = new ManualClock();
  const server = new ScriptedFetch(() => clock.now());
  const logger = captureLogger();
  const http = createMatrixHttp({
    baseUrl: "https://hs.example",
    accessToken: TOKEN,
    fetch: server.fetch,
    clock,
    random: () => 0.5,
    logger,
    ...options,
  });
  return { clock, server, logger, http };
}

export type Settled<T> =
  | { done: false }
  | { done: true; ok: true; value: T }
  | { done: true; ok: false; error: unknown };

/**
 * Observes a promise without awaiting it, so a test can move the clock and look at the state in
 * between; the rejection is handled at once, never unhandled.
 */
export function observe<T>(promise: Promise<T>): {
  readonly state: Settled<T>;
  readonly result: Promise<Settled<T>>;
} {
  let state: Settled<T> = { done: false };
  const result = promise.then(
    (value) => {
      state = { done: true, ok: true, value };
      return state;
    },
    (error: unknown) => {
      state = { done: true, ok: false, error };
      return state;
    },
  );
  return {
    get state() {
      return state;
    },
    result,
  };
}

/** Awaits a promise that must reject, and returns what it rejected with. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  const settled = await observe(promise).result;
  if (!settled.done || settled.ok) throw new Error("expected the promise to reject, but it resolved");
  return settled.error;
}
