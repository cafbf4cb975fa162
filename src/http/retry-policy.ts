/**
 * The retry decision as a pure function: data in, decision out; no clock, no network.
 *
 * - `permanent` failures are the server's final word: never retried.
 * - A server-provided wait (`retry_after_ms` / `Retry-After`, spec "Rate limiting") is honoured
 *   exactly, but never beyond `maxServerWaitMs`, so one bad header cannot park a client for hours.
 * - Otherwise exponential backoff with jitter, capped at `maxDelayMs`: "full" jitter draws from
 *   [0, min(cap, base·2^(n-1))); "decorrelated" draws from [base, min(cap, 3·previous)).
 */

/** What happened on one attempt, as far as retrying is concerned. */
export type OutcomeClass = "permanent" | "rate-limited" | "transient" | "network";

/** How a backoff wait is drawn (see the module comment). */
export type JitterStrategy = "full" | "decorrelated";

/** The transport's retry limits; every field has a default in `defaultRetryConfig`. */
export interface RetryConfig {
  /** Attempts in total, the first included (1 = never retry). */
  maxAttempts: number;
  baseDelayMs: number;
  /** Cap on computed backoff. */
  maxDelayMs: number;
  /** Cap on a server-provided wait. */
  maxServerWaitMs: number;
  jitter: JitterStrategy;
}

/** 5 attempts, 0.5 s base, 30 s cap on backoff, 60 s cap on a server-asked wait, full jitter. */
export const defaultRetryConfig: Readonly<RetryConfig> = Object.freeze({
  maxAttempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxServerWaitMs: 60_000,
  jitter: "full",
});

export interface RetryInput {
  /** The 1-based number of the attempt that just failed. */
  attempt: number;
  outcome: OutcomeClass;
  /** A wait the server asked for, in ms. */
  retryAfterMs?: number | undefined;
  /** The delay chosen before the failed attempt (decorrelated jitter needs it). */
  previousDelayMs?: number | undefined;
  /** Uniform in [0, 1). */
  random: () => number;
  config: RetryConfig;
}

/** Retry after `delayMs`, or give up and say why. */
export type RetryDecision =
  | { retry: true; delayMs: number }
  | { retry: false; reason: "permanent" | "attempts-exhausted" };

/** Whether and when to send again after a failed attempt. */
export function decideRetry(input: RetryInput): RetryDecision {
  const { attempt, outcome, config } = input;
  if (outcome === "permanent") return { retry: false, reason: "permanent" };
  if (attempt >= config.maxAttempts) return { retry: false, reason: "attempts-exhausted" };

  if (input.retryAfterMs !== undefined && Number.isFinite(input.retryAfterMs) && input.retryAfterMs >= 0) {
    return { retry: true, delayMs: Math.round(Math.min(input.retryAfterMs, config.maxServerWaitMs)) };
  }
  return { retry: true, delayMs: Math.round(backoff(input)) };
}

function backoff(input: RetryInput): number {
  const { config, attempt } = input;
  const r = unit(input.random());
  if (config.jitter === "decorrelated") {
    const previous = Math.max(config.baseDelayMs, input.previousDelayMs ?? config.baseDelayMs);
    const upper = Math.min(config.maxDelayMs, previous * 3);
    const lower = Math.min(config.baseDelayMs, upper);
    return lower + r * (upper - lower);
  }
  return r * exponentialDelayMs(attempt, config.baseDelayMs, config.maxDelayMs);
}

/**
 * The capped exponential step every backoff in the SDK starts from: `baseMs·2^(attempt-1)`, never
 * beyond `capMs`. `attempt` counts from 1 (the first retry waits `baseMs`). Jitter, if any, is the
 * caller's: the transport draws within the step, the outgoing-request loop draws half of it, the
 * dehydrated-device rotation (hours apart) uses it as is.
 */
export function exponentialDelayMs(attempt: number, baseMs: number, capMs: number): number {
  // 2^(attempt-1) grows past any cap quickly; clamp the exponent so it stays finite.
  return Math.min(capMs, baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 52));
}

/** A misbehaving random source must not produce negative or unbounded waits. */
function unit(value: number): number {
  if (!Number.isFinite(value) || value < 0) return 0;
  return value >= 1 ? 1 - Number.EPSILON : value;
}
