import { createPrng, type Prng } from "./prng.js";
import { compilePattern, type PathPattern } from "./route-pattern.js";

/**
 * Fault injection for client-facing requests (never for `/_mock/` control calls). Two kinds:
 * random faults drawn from a seeded PRNG — one draw per request, so the same seed and the same
 * request sequence give the same faults — and scripted one-off failures matched by method + path.
 */

export interface FaultSettings {
  /** Added before every request is handled, in ms. */
  latencyMs: number;
  /** Probability of a server error (`serverErrorStatus`, `M_UNKNOWN`). */
  serverErrorRate: number;
  /** Probability of 429 `M_LIMIT_EXCEEDED` with `retry_after_ms` and `Retry-After`. */
  rateLimitRate: number;
  /** Probability that the connection is dropped without a response. */
  dropRate: number;
  serverErrorStatus: number;
  retryAfterMs: number;
  /** Seed of the PRNG; setting it (even to the same value) restarts the sequence. */
  seed: number;
}

export const defaultFaultSettings: Readonly<FaultSettings> = {
  latencyMs: 0,
  serverErrorRate: 0,
  rateLimitRate: 0,
  dropRate: 0,
  serverErrorStatus: 500,
  retryAfterMs: 1000,
  seed: 1,
};

export interface ScriptedFailureSpec {
  /** Any method when omitted. */
  method?: string;
  /** Path pattern: literal segments, `{x}` for one segment, trailing `*` for any remainder. */
  path: string;
  /** How many matching requests fail (default 1). */
  times?: number;
  /** `"before"` (default): the request is not processed. `"after"`: it is, then the response is lost or replaced. */
  when?: "before" | "after";
  /** Drop the connection instead of answering. */
  drop?: boolean;
  status?: number;
  errcode?: string;
  error?: string;
  /** For 429s: `retry_after_ms` in the body and `Retry-After` in the headers. */
  retryAfterMs?: number;
}

export interface ScriptedFailure extends Required<Pick<ScriptedFailureSpec, "path" | "when" | "drop">> {
  id: number;
  method: string | undefined;
  remaining: number;
  status: number;
  errcode: string;
  error: string;
  retryAfterMs: number | undefined;
}

export type FaultAction =
  | { kind: "drop"; source: "random" | "scripted" }
  | {
      kind: "error";
      source: "random" | "scripted";
      status: number;
      errcode: string;
      error: string;
      retryAfterMs: number | undefined;
    };

export class FaultInjector {
  #settings: FaultSettings = { ...defaultFaultSettings };
  #prng: Prng = createPrng(defaultFaultSettings.seed);
  #scripted: { failure: ScriptedFailure; pattern: PathPattern }[] = [];
  #nextId = 1;

  settings(): FaultSettings {
    return { ...this.#settings };
  }

  /** Merges `changes` into the settings after checking them; throws `RangeError` on bad values. */
  configure(changes: Partial<FaultSettings>): FaultSettings {
    const next = { ...this.#settings, ...changes };
    for (const key of ["serverErrorRate", "rateLimitRate", "dropRate"] as const) {
      if (!(next[key] >= 0 && next[key] <= 1)) throw new RangeError(`${key} must be within [0, 1]`);
    }
    if (next.serverErrorRate + next.rateLimitRate + next.dropRate > 1) {
      throw new RangeError("serverErrorRate + rateLimitRate + dropRate must not exceed 1");
    }
    if (!(next.latencyMs >= 0 && Number.isFinite(next.latencyMs)))
      throw new RangeError("latencyMs must be >= 0");
    if (!(next.retryAfterMs >= 0 && Number.isInteger(next.retryAfterMs))) {
      throw new RangeError("retryAfterMs must be a non-negative integer");
    }
    if (
      !(
        Number.isInteger(next.serverErrorStatus) &&
        next.serverErrorStatus >= 500 &&
        next.serverErrorStatus <= 599
      )
    ) {
      throw new RangeError("serverErrorStatus must be 500-599");
    }
    if (!Number.isInteger(next.seed)) throw new RangeError("seed must be an integer");
    this.#settings = next;
    if (changes.seed !== undefined) this.#prng = createPrng(next.seed);
    return this.settings();
  }

  /** Back to no faults, seed restarted, scripted failures forgotten. */
  reset(): void {
    this.#settings = { ...defaultFaultSettings };
    this.#prng = createPrng(defaultFaultSettings.seed);
    this.#scripted = [];
  }

  script(spec: ScriptedFailureSpec): ScriptedFailure {
    const times = spec.times ?? 1;
    if (!(Number.isInteger(times) && times >= 1)) throw new RangeError("times must be a positive integer");
    const status = spec.status ?? (spec.retryAfterMs !== undefined ? 429 : 500);
    if (!(Number.isInteger(status) && status >= 400 && status <= 599)) {
      throw new RangeError("status must be 400-599");
    }
    if (!spec.path.startsWith("/")) throw new RangeError("path must start with /");
    const failure: ScriptedFailure = {
      id: this.#nextId++,
      method: spec.method?.toUpperCase(),
      path: spec.path,
      when: spec.when ?? "before",
      drop: spec.drop ?? false,
      remaining: times,
      status,
      errcode: spec.errcode ?? (status === 429 ? "M_LIMIT_EXCEEDED" : "M_UNKNOWN"),
      error: spec.error ?? (status === 429 ? "Too Many Requests" : "Scripted failure"),
      retryAfterMs: spec.retryAfterMs ?? (status === 429 ? this.#settings.retryAfterMs : undefined),
    };
    this.#scripted.push({ failure, pattern: compilePattern(spec.path) });
    return { ...failure };
  }

  scripted(): ScriptedFailure[] {
    return this.#scripted.map((s) => ({ ...s.failure }));
  }

  clearScripted(): void {
    this.#scripted = [];
  }

  /** The scripted failure for this request and phase, consuming one of its uses. */
  takeScripted(method: string, path: string, when: "before" | "after"): FaultAction | undefined {
    const index = this.#scripted.findIndex(
      ({ failure, pattern }) =>
        failure.when === when &&
        (failure.method === undefined || failure.method === method) &&
        pattern.match(path) !== undefined,
    );
    if (index < 0) return undefined;
    const { failure } = this.#scripted[index]!;
    failure.remaining--;
    if (failure.remaining <= 0) this.#scripted.splice(index, 1);
    if (failure.drop) return { kind: "drop", source: "scripted" };
    return {
      kind: "error",
      source: "scripted",
      status: failure.status,
      errcode: failure.errcode,
      error: failure.error,
      retryAfterMs: failure.retryAfterMs,
    };
  }

  /** One PRNG draw, always taken so the sequence depends only on the seed and the request count. */
  drawRandom(): FaultAction | undefined {
    const r = this.#prng.next();
    const s = this.#settings;
    if (r < s.dropRate) return { kind: "drop", source: "random" };
    if (r < s.dropRate + s.serverErrorRate) {
      return {
        kind: "error",
        source: "random",
        status: s.serverErrorStatus,
        errcode: "M_UNKNOWN",
        error: "Internal server error",
        retryAfterMs: undefined,
      };
    }
    if (r < s.dropRate + s.serverErrorRate + s.rateLimitRate) {
      return {
        kind: "error",
        source: "random",
        status: 429,
        errcode: "M_LIMIT_EXCEEDED",
        error: "Too Many Requests",
        retryAfterMs: s.retryAfterMs,
      };
    }
    return undefined;
  }
}
