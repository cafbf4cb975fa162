import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decideRetry,
  exponentialDelayMs,
  type RetryConfig,
  type RetryInput,
} from "../../src/http/retry-policy.js";

const config: RetryConfig = {
  maxAttempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxServerWaitMs: 60_000,
  jitter: "full",
};
const decorrelated: RetryConfig = { ...config, jitter: "decorrelated" };
const fixed = (value: number) => () => value;

type Row = [string, Omit<RetryInput, "random"> & { random: number }, ReturnType<typeof decideRetry>];

const table: Row[] = [
  [
    "a permanent failure is never retried",
    { attempt: 1, outcome: "permanent", config, random: 0.5 },
    { retry: false, reason: "permanent" },
  ],
  [
    "a permanent failure ignores a server wait",
    { attempt: 1, outcome: "permanent", retryAfterMs: 10, config, random: 0.5 },
    { retry: false, reason: "permanent" },
  ],
  [
    "the last allowed attempt gives up",
    { attempt: 5, outcome: "transient", config, random: 0.5 },
    { retry: false, reason: "attempts-exhausted" },
  ],
  [
    "a rate limit gives up too once attempts run out",
    { attempt: 5, outcome: "rate-limited", retryAfterMs: 100, config, random: 0.5 },
    { retry: false, reason: "attempts-exhausted" },
  ],
  [
    "maxAttempts 1 never retries",
    { attempt: 1, outcome: "network", config: { ...config, maxAttempts: 1 }, random: 0.5 },
    { retry: false, reason: "attempts-exhausted" },
  ],
  [
    "a server wait is honoured exactly, without jitter",
    { attempt: 1, outcome: "rate-limited", retryAfterMs: 2_345, config, random: 0.1 },
    { retry: true, delayMs: 2_345 },
  ],
  [
    "a server wait of zero retries at once",
    { attempt: 2, outcome: "rate-limited", retryAfterMs: 0, config, random: 0.9 },
    { retry: true, delayMs: 0 },
  ],
  [
    "a server wait above the maximum is capped",
    { attempt: 1, outcome: "rate-limited", retryAfterMs: 3_600_000, config, random: 0.5 },
    { retry: true, delayMs: 60_000 },
  ],
  [
    "a server wait on a 5xx is honoured too",
    { attempt: 1, outcome: "transient", retryAfterMs: 1_000, config, random: 0.5 },
    { retry: true, delayMs: 1_000 },
  ],
  [
    "a negative server wait falls back to backoff",
    { attempt: 1, outcome: "rate-limited", retryAfterMs: -5, config, random: 0.5 },
    { retry: true, delayMs: 250 },
  ],
  [
    "a rate limit without a wait backs off",
    { attempt: 1, outcome: "rate-limited", config, random: 0.5 },
    { retry: true, delayMs: 250 },
  ],
  [
    "full jitter, attempt 1: random × base",
    { attempt: 1, outcome: "transient", config, random: 0.5 },
    { retry: true, delayMs: 250 },
  ],
  [
    "full jitter, attempt 2: random × 2·base",
    { attempt: 2, outcome: "transient", config, random: 0.5 },
    { retry: true, delayMs: 500 },
  ],
  [
    "full jitter, attempt 4: random × 8·base",
    { attempt: 4, outcome: "network", config, random: 0.25 },
    { retry: true, delayMs: 1_000 },
  ],
  [
    "full jitter can draw zero",
    { attempt: 3, outcome: "network", config, random: 0 },
    { retry: true, delayMs: 0 },
  ],
  [
    "full jitter is capped at maxDelayMs",
    { attempt: 40, outcome: "transient", config: { ...config, maxAttempts: 100 }, random: 0.5 },
    { retry: true, delayMs: 15_000 },
  ],
  [
    "a huge attempt number stays finite",
    { attempt: 5_000, outcome: "transient", config: { ...config, maxAttempts: 10_000 }, random: 0.5 },
    { retry: true, delayMs: 15_000 },
  ],
  [
    "decorrelated jitter starts in [base, 3·base)",
    { attempt: 1, outcome: "transient", config: decorrelated, random: 0.5 },
    { retry: true, delayMs: 1_000 },
  ],
  [
    "decorrelated jitter draws base at random 0",
    { attempt: 2, outcome: "transient", previousDelayMs: 4_000, config: decorrelated, random: 0 },
    { retry: true, delayMs: 500 },
  ],
  [
    "decorrelated jitter grows from the previous delay",
    { attempt: 2, outcome: "network", previousDelayMs: 4_000, config: decorrelated, random: 0.5 },
    { retry: true, delayMs: 6_250 },
  ],
  [
    "decorrelated jitter is capped at maxDelayMs",
    { attempt: 3, outcome: "network", previousDelayMs: 20_000, config: decorrelated, random: 0.5 },
    { retry: true, delayMs: 15_250 },
  ],
  [
    "a random source returning NaN is treated as 0",
    { attempt: 2, outcome: "transient", config, random: Number.NaN },
    { retry: true, delayMs: 0 },
  ],
  [
    "a random source returning 1.5 is clamped below 1",
    { attempt: 1, outcome: "transient", config, random: 1.5 },
    { retry: true, delayMs: 500 },
  ],
];

describe("decideRetry", () => {
  it.each(table)("%s", (_name, { random, ...input }, expected) => {
    expect(decideRetry({ ...input, random: fixed(random) })).toEqual(expected);
  });

  it("never waits less than zero or more than the relevant cap, whatever the inputs", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.constantFrom("rate-limited", "transient", "network" as const),
        fc.option(fc.integer({ min: 0, max: 10_000_000 }), { nil: undefined }),
        fc.option(fc.integer({ min: 0, max: 100_000 }), { nil: undefined }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.constantFrom("full", "decorrelated" as const),
        (attempt, outcome, retryAfterMs, previousDelayMs, r, jitter) => {
          const cfg = { ...config, maxAttempts: 100, jitter };
          const d = decideRetry({
            attempt,
            outcome,
            retryAfterMs,
            previousDelayMs,
            random: fixed(r),
            config: cfg,
          });
          if (!d.retry) throw new Error("a retryable outcome below maxAttempts must be retried");
          const cap = retryAfterMs === undefined ? cfg.maxDelayMs : cfg.maxServerWaitMs;
          return d.delayMs >= 0 && d.delayMs <= cap && Number.isInteger(d.delayMs);
        },
      ),
    );
  });
});

describe("exponentialDelayMs", () => {
  it("waits the base first, then doubles up to the cap", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => exponentialDelayMs(n, 500, 30_000))).toEqual([
      500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000,
    ]);
  });

  it("treats an attempt below 1 as the first", () => {
    expect(exponentialDelayMs(0, 500, 30_000)).toBe(500);
    expect(exponentialDelayMs(-3, 500, 30_000)).toBe(500);
  });

  it("stays at the cap, and finite, however many attempts failed", () => {
    for (const attempt of [53, 1_100, Number.MAX_SAFE_INTEGER]) {
      expect(exponentialDelayMs(attempt, 500, 30_000)).toBe(30_000);
    }
    expect(Number.isFinite(exponentialDelayMs(10_000, 1, Number.POSITIVE_INFINITY))).toBe(true);
  });
});
