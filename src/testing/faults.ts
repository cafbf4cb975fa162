import { createPrng, type Prng } from "./prng.js";
import { compilePattern, type PathPattern } from "./route-pattern.js";

/**
 * Fault injection for client-facing requests (never for `/_mock/` control calls). Two kinds:
 * random faults drawn from a seeded PRNG — one draw per request, so the same seed and the same
 * request sequence give the same faults — and scripted one-off failures matched by method + path.
 * A fault strikes either before the request is processed (nothing changes on the server) or after
 * (state changed, but the client sees a lost or different answer): retries of non-idempotent calls
 * are tested with the second.
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
  /**
   * Probability that the request is processed (a to-device message stored, a dehydrated device
   * replaced) and then the connection is dropped, so the client cannot tell whether it worked.
   */
  lostResponseRate: number;
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
  lostResponseRate: 0,
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
  /** 400-599, or 200-299 together with `body` or `rawBody` (a success the client cannot parse). */
  status?: number;
  errcode?: string;
  error?: string;
  /** For 429s: `retry_after_ms` in the body and `Retry-After` in the headers. */
  retryAfterMs?: number;
  /** Sent JSON-encoded instead of `{errcode, error}`, e.g. `{events: "nope"}` to break a parser. */
  body?: unknown;
  /** Sent as it is instead of `{errcode, error}` (still labelled JSON), e.g. a truncated `{"ev`. */
  rawBody?: string;
}

export interface ScriptedFailure extends Required<Pick<ScriptedFailureSpec, "path" | "when" | "drop">> {
  id: number;
  method: string | undefined;
  remaining: number;
  status: number;
  /** `undefined` when `body` or `rawBody` is the answer. */
  errcode: string | undefined;
  error: string | undefined;
  retryAfterMs: number | undefined;
  body: unknown;
  rawBody: string | undefined;
}

/**
 * What a fault did to a request, for the request log: `drop` and `answer` struck before the
 * request was processed (connection cut; the fault's answer sent instead), `lost-response` and
 * `replaced-response` after it (the route's answer cut off; replaced by the fault's).
 */
export type FaultKind = "drop" | "answer" | "lost-response" | "replaced-response";

export type FaultAction = {
  source: "random" | "scripted";
  /** `"after"`: the request is processed first and only its answer is faulted. */
  when: "before" | "after";
} & (
  | { kind: "drop" }
  | { kind: "error"; status: number; errcode: string; error: string; retryAfterMs: number | undefined }
  /** A scripted answer with a body of the test's choosing, sent byte for byte. */
  | { kind: "answer"; status: number; body: string }
);

export function faultKindOf(action: FaultAction): FaultKind {
  if (action.when === "before") return action.kind === "drop" ? "drop" : "answer";
  return action.kind === "drop" ? "lost-response" : "replaced-response";
}

export class FaultInjector {
  #settings: FaultSettings = { ...defaultFaultSettings };
  #prng: Prng = createPrng(defaultFaultSettings.seed);
  #scripted: { failure: ScriptedFailure; pattern: PathPattern; bodyText: string | undefined }[] = [];
  #nextId = 1;

  settings(): FaultSettings {
    return { ...this.#settings };
  }

  /** Merges `changes` into the settings after checking them; throws `RangeError` on bad values. */
  configure(changes: Partial<FaultSettings>): FaultSettings {
    const next = { ...this.#settings, ...changes };
    const rates = ["serverErrorRate", "rateLimitRate", "dropRate", "lostResponseRate"] as const;
    for (const key of rates) {
      if (!(next[key] >= 0 && next[key] <= 1)) throw new RangeError(`${key} must be within [0, 1]`);
    }
    if (rates.reduce((sum, key) => sum + next[key], 0) > 1) {
      throw new RangeError("serverErrorRate + rateLimitRate + dropRate + lostResponseRate must not exceed 1");
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
    const bodyText = scriptedBodyText(spec);
    const status = spec.status ?? (spec.retryAfterMs !== undefined ? 429 : 500);
    const success = status >= 200 && status <= 299;
    if (!(Number.isInteger(status) && (success || (status >= 400 && status <= 599)))) {
      throw new RangeError("status must be 200-299 or 400-599");
    }
    if (success && bodyText === undefined) throw new RangeError("a 2xx status needs body or rawBody");
    if (!spec.path.startsWith("/")) throw new RangeError("path must start with /");
    const custom = bodyText !== undefined;
    const failure: ScriptedFailure = {
      id: this.#nextId++,
      method: spec.method?.toUpperCase(),
      path: spec.path,
      when: spec.when ?? "before",
      drop: spec.drop ?? false,
      remaining: times,
      status,
      errcode: custom ? undefined : (spec.errcode ?? (status === 429 ? "M_LIMIT_EXCEEDED" : "M_UNKNOWN")),
      error: custom ? undefined : (spec.error ?? (status === 429 ? "Too Many Requests" : "Scripted failure")),
      retryAfterMs: custom
        ? undefined
        : (spec.retryAfterMs ?? (status === 429 ? this.#settings.retryAfterMs : undefined)),
      body: spec.body,
      rawBody: spec.rawBody,
    };
    this.#scripted.push({ failure, pattern: compilePattern(spec.path), bodyText });
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
    const { failure, bodyText } = this.#scripted[index]!;
    failure.remaining--;
    if (failure.remaining <= 0) this.#scripted.splice(index, 1);
    if (failure.drop) return { kind: "drop", source: "scripted", when };
    if (bodyText !== undefined) {
      return { kind: "answer", source: "scripted", when, status: failure.status, body: bodyText };
    }
    return {
      kind: "error",
      source: "scripted",
      when,
      status: failure.status,
      errcode: failure.errcode!,
      error: failure.error!,
      retryAfterMs: failure.retryAfterMs,
    };
  }

  /**
   * One PRNG draw, always taken so the sequence depends only on the seed and the request count.
   * The lost-response band comes last, so seeds keep the faults they gave before it existed.
   */
  drawRandom(): FaultAction | undefined {
    const r = this.#prng.next();
    const s = this.#settings;
    if (r < s.dropRate) return { kind: "drop", source: "random", when: "before" };
    if (r < s.dropRate + s.serverErrorRate) {
      return {
        kind: "error",
        source: "random",
        when: "before",
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
        when: "before",
        status: 429,
        errcode: "M_LIMIT_EXCEEDED",
        error: "Too Many Requests",
        retryAfterMs: s.retryAfterMs,
      };
    }
    if (r < s.dropRate + s.serverErrorRate + s.rateLimitRate + s.lostResponseRate) {
      return { kind: "drop", source: "random", when: "after" };
    }
    return undefined;
  }
}

/** The text a scripted `body`/`rawBody` answers with, checked: `undefined` when there is none. */
function scriptedBodyText(spec: ScriptedFailureSpec): string | undefined {
  const hasBody = spec.body !== undefined;
  const hasRaw = spec.rawBody !== undefined;
  if (!hasBody && !hasRaw) return undefined;
  if (hasBody && hasRaw) throw new RangeError("body and rawBody exclude each other");
  if (spec.drop) throw new RangeError("a dropped connection has no body");
  if (spec.errcode !== undefined || spec.error !== undefined || spec.retryAfterMs !== undefined) {
    throw new RangeError("errcode, error and retryAfterMs do not apply with body or rawBody");
  }
  if (hasRaw) return spec.rawBody;
  let text: string | undefined;
  try {
    text = JSON.stringify(spec.body);
  } catch {
    // BigInts and cycles: fall through to the same refusal as functions.
  }
  if (text === undefined) throw new RangeError("body must be JSON-serialisable");
  return text;
}
