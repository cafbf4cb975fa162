import { AbortError } from "../errors/abort-error.js";
import { TimeoutError } from "../errors/timeout-error.js";
import type { Clock } from "../time/clock.js";
import { raceAbort } from "./abortable.js";
import { decideRetry, type OutcomeClass, type RetryConfig } from "./retry-policy.js";
import type { RetryMode } from "./types.js";

/** What one attempt produced: a value, or a classified failure the policy can reason about. */
export type AttemptResult<T> =
  | { ok: true; value: T }
  | { ok: false; outcome: OutcomeClass; error: Error; retryAfterMs?: number | undefined };

export interface RetryInfo {
  /** The 1-based number of the attempt that failed. */
  attempt: number;
  delayMs: number;
  outcome: OutcomeClass;
  error: Error;
}

export interface RetryLoopOptions {
  clock: Clock;
  random: () => number;
  config: RetryConfig;
  /** Only "safe" requests are repeated; "never" gives up after the first failure of any kind. */
  mode: RetryMode;
  /** Per-attempt timeout on the injected clock. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Names the request in Timeout/Abort errors. */
  method: string;
  path: string;
  onRetry?: (info: RetryInfo) => void;
}

/**
 * Runs `attempt` until it succeeds, the policy gives up, or the caller aborts. Each attempt gets
 * a signal that fires on the caller's abort or on the per-attempt timeout; waits between attempts
 * are `clock.sleep`s that the caller's signal interrupts. Time never comes from anywhere but
 * `options.clock`.
 */
export async function runWithRetry<T>(
  attempt: (signal: AbortSignal) => Promise<AttemptResult<T>>,
  options: RetryLoopOptions,
): Promise<T> {
  const { clock, signal, method, path } = options;
  const aborted = () => new AbortError(`${method} ${path}`, { cause: signal?.reason });
  let previousDelayMs: number | undefined;

  for (let n = 1; ; n++) {
    if (signal?.aborted) throw aborted();
    const result = await runAttempt(attempt, options);
    if (result.ok) return result.value;
    if (signal?.aborted) throw aborted();

    const decision =
      options.mode === "safe"
        ? decideRetry({
            attempt: n,
            outcome: result.outcome,
            retryAfterMs: result.retryAfterMs,
            previousDelayMs,
            random: options.random,
            config: options.config,
          })
        : ({ retry: false } as const);
    if (!decision.retry) throw result.error;

    options.onRetry?.({
      attempt: n,
      delayMs: decision.delayMs,
      outcome: result.outcome,
      error: result.error,
    });
    previousDelayMs = decision.delayMs;
    try {
      await clock.sleep(decision.delayMs, signal);
    } catch {
      throw aborted();
    }
  }
}

const timedOut = Symbol("timed out");

async function runAttempt<T>(
  attempt: (signal: AbortSignal) => Promise<AttemptResult<T>>,
  options: RetryLoopOptions,
): Promise<AttemptResult<T>> {
  const { clock, signal, timeoutMs, method, path } = options;
  const attemptController = new AbortController();
  const stopTimer = new AbortController();
  const onCallerAbort = () => attemptController.abort(signal?.reason);
  signal?.addEventListener("abort", onCallerAbort, { once: true });
  clock.sleep(timeoutMs, stopTimer.signal).then(
    () => attemptController.abort(timedOut),
    () => {},
  );
  try {
    // raceAbort rejects the moment the attempt signal fires, before the fetch's own abort handling
    // can turn it into an ordinary network failure; so the catch below sees every abort.
    return await raceAbort(attempt(attemptController.signal), attemptController.signal);
  } catch (err) {
    if (signal?.aborted) throw new AbortError(`${method} ${path}`, { cause: signal.reason });
    if (attemptController.signal.reason === timedOut) {
      // A timeout is retried like a network failure: the server may or may not have acted.
      return { ok: false, outcome: "network", error: new TimeoutError(method, path, timeoutMs) };
    }
    throw err;
  } finally {
    stopTimer.abort();
    signal?.removeEventListener("abort", onCallerAbort);
  }
}
