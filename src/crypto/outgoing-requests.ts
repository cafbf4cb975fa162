import { errorSummary } from "../errors/error-summary.js";
import { TypedEmitter } from "../events/emitter.js";
import { exponentialDelayMs } from "../http/retry-policy.js";
import type { MatrixHttp } from "../http/types.js";
import { type Logger, silentLogger } from "../logger.js";
import type { Clock } from "../time/clock.js";
import { systemRandom } from "../time/random.js";
import type { CryptoEvents } from "./crypto-events.js";
import { type OutgoingRequest, outgoingRequestKind } from "./request-endpoints.js";
import { type RequestMachine, sendOutgoingRequest } from "./send-outgoing-request.js";

/** What the outgoing-request loop drives, and how it backs off. */
export interface OutgoingRequestLoopOptions {
  machine: RequestMachine;
  http: MatrixHttp;
  clock: Clock;
  /** Shared crypto-layer emitter; a private one is created when omitted. */
  events?: TypedEmitter<CryptoEvents>;
  logger?: Logger;
  /** Source of jitter in [0, 1); injectable for tests. */
  random?: () => number;
  /** First retry delay after a failed pass. Default 1 s. */
  retryBaseMs?: number;
  /** Upper bound of the retry delay. Default 60 s. */
  retryCapMs?: number;
  /**
   * Passes one `run()` makes while each pass still sends something (answers can unlock more work,
   * e.g. a low one-time-key count asks for another upload). Bounds a server that keeps the machine
   * busy forever. Default 10.
   */
  maxPassesPerRun?: number;
}

type PassOutcome =
  | { kind: "idle" | "sent" | "stopped" }
  | { kind: "failed"; retryAfterMs: number | undefined };

/**
 * Drives `OlmMachine.outgoingRequests()` → transport → `markRequestAsSent`, the sans-I/O contract of
 * matrix-sdk-crypto. Exactly one pass runs at a time; `run()` while a pass is in flight asks for one
 * more pass afterwards (any number of such calls coalesce into one). Failures become events and a
 * retry on the injected clock with capped exponential backoff; `run()` never rejects.
 *
 * This is the only path through which the machine's own key queries reach the server: the machine
 * batches and deduplicates `keys/query` itself, so the SDK never queries keys on the side.
 */
export class OutgoingRequestLoop {
  readonly events: TypedEmitter<CryptoEvents>;
  readonly #machine: RequestMachine;
  readonly #http: MatrixHttp;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #random: () => number;
  readonly #baseMs: number;
  readonly #capMs: number;
  readonly #maxPasses: number;
  readonly #abort = new AbortController();
  #current: Promise<void> | undefined;
  #again = false;
  #retryPending = false;
  #consecutiveFailures = 0;

  constructor(options: OutgoingRequestLoopOptions) {
    this.#machine = options.machine;
    this.#http = options.http;
    this.#clock = options.clock;
    this.#logger = options.logger ?? silentLogger;
    this.events = options.events ?? new TypedEmitter<CryptoEvents>(this.#logger);
    this.#random = options.random ?? systemRandom;
    this.#baseMs = options.retryBaseMs ?? 1_000;
    this.#capMs = options.retryCapMs ?? 60_000;
    this.#maxPasses = options.maxPassesPerRun ?? 10;
  }

  get stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  /** Whether a pass is in flight. */
  get running(): boolean {
    return this.#current !== undefined;
  }

  /**
   * Sends whatever the machine wants sent. Resolves once the pass this call asked for is done
   * (including a coalesced extra pass); never rejects. A no-op after `stop()`.
   */
  run(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.#current) {
      this.#again = true;
      return this.#current;
    }
    const current = this.#drive()
      .catch((error: unknown) => {
        // #pass catches every failure it expects; this is the last net so run() never rejects.
        this.#logger.error("outgoing-request loop failed", errorSummary(error));
        this.events.emit("loopFailed", { error });
      })
      .finally(() => {
        if (this.#current === current) this.#current = undefined;
      });
    this.#current = current;
    return current;
  }

  /** Cancels the pending retry and the request in flight; resolves when the loop is idle. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#current;
  }

  async #drive(): Promise<void> {
    let passes = 0;
    for (;;) {
      this.#again = false;
      const outcome = await this.#pass();
      passes++;
      if (outcome.kind === "stopped") {
        this.#current = undefined;
        return;
      }
      if (outcome.kind === "failed") {
        this.#scheduleRetry(outcome.retryAfterMs);
      } else {
        this.#consecutiveFailures = 0;
        if (outcome.kind === "sent" && passes < this.#maxPasses) this.#again = true;
      }
      if (!this.#again || this.stopped) {
        // Cleared in the same tick as the last look at #again, so a run() arriving after this
        // point starts a new pass instead of joining one that is already over.
        this.#current = undefined;
        return;
      }
    }
  }

  async #pass(): Promise<PassOutcome> {
    let requests: OutgoingRequest[];
    try {
      requests = await this.#machine.outgoingRequests();
    } catch (error) {
      this.#logger.warn("outgoingRequests() failed", errorSummary(error));
      this.events.emit("loopFailed", { error });
      return { kind: "failed", retryAfterMs: undefined };
    }
    try {
      return await this.#send(requests);
    } finally {
      // Each request is a wasm object holding a copy of its body; the machine tracks it by id, so
      // the objects can go once this pass is done with them (sent, failed or not reached).
      for (const request of requests) request.free();
    }
  }

  async #send(requests: readonly OutgoingRequest[]): Promise<PassOutcome> {
    if (requests.length === 0) return { kind: "idle" };
    let failed = false;
    let retryAfterMs: number | undefined;
    // Sequential on purpose: the machine orders its requests (keys upload before anything that
    // depends on our published keys), and one pass at a time keeps the server load predictable.
    for (const request of requests) {
      if (this.stopped) return { kind: "stopped" };
      const requestId = request.id;
      const kind = outgoingRequestKind(request);
      const uploaded = kind === "KeysUpload" ? uploadedKeys(request) : undefined;
      const queried = kind === "KeysQuery" ? queriedUsers(request) : undefined;
      try {
        const response = await sendOutgoingRequest(this.#machine, this.#http, request, this.#abort.signal);
        this.events.emit("requestSent", { requestId, kind });
        if (uploaded !== undefined) this.events.emit("keysUploaded", uploaded);
        if (queried !== undefined) {
          this.events.emit("keysQueried", { users: queried, failedServers: failedServers(response) });
        }
      } catch (error) {
        if (this.stopped) return { kind: "stopped" };
        failed = true;
        const after = serverRetryAfterMs(error);
        if (after !== undefined) retryAfterMs = Math.max(retryAfterMs ?? 0, after);
        this.#logger.warn(`${kind} request failed`, errorSummary(error));
        this.events.emit("requestFailed", { requestId, kind, error });
      }
    }
    return failed ? { kind: "failed", retryAfterMs } : { kind: "sent" };
  }

  #scheduleRetry(retryAfterMs: number | undefined): void {
    if (this.#retryPending || this.stopped) return;
    this.#consecutiveFailures++;
    // A server that said when to come back (429 `retry_after_ms` on a request the transport would
    // not repeat, e.g. keys/claim) is not asked again sooner.
    const delayMs = Math.max(
      backoffDelay(this.#consecutiveFailures, this.#baseMs, this.#capMs, this.#random),
      Math.min(retryAfterMs ?? 0, this.#capMs),
    );
    this.#retryPending = true;
    this.events.emit("retryScheduled", { delayMs, consecutiveFailures: this.#consecutiveFailures });
    this.#clock.sleep(delayMs, this.#abort.signal).then(
      () => {
        this.#retryPending = false;
        void this.run();
      },
      () => {
        // Aborted by stop(): nothing to retry.
        this.#retryPending = false;
      },
    );
  }
}

/**
 * "Equal jitter": half the exponential step is fixed, half random, so retries after a shared outage
 * spread out but never fire almost immediately.
 */
export function backoffDelay(failures: number, baseMs: number, capMs: number, random: () => number): number {
  const step = exponentialDelayMs(failures, baseMs, capMs);
  return Math.round(step / 2 + (step / 2) * random());
}

/** What a `keys/upload` body carries, counted; `undefined` when the body cannot be read. */
function uploadedKeys(request: OutgoingRequest): CryptoEvents["keysUploaded"] | undefined {
  try {
    const body = JSON.parse((request as { body: string }).body) as {
      one_time_keys?: Record<string, unknown>;
      fallback_keys?: Record<string, unknown>;
      device_keys?: unknown;
    };
    return {
      oneTimeKeys: Object.keys(body.one_time_keys ?? {}).length,
      fallbackKeys: Object.keys(body.fallback_keys ?? {}).length,
      deviceKeys: body.device_keys !== undefined && body.device_keys !== null,
    };
  } catch {
    return undefined;
  }
}

/** The users a `keys/query` body asks for (`device_keys` keys); `undefined` when it cannot be read. */
function queriedUsers(request: OutgoingRequest): string[] | undefined {
  try {
    const body = JSON.parse((request as { body: string }).body) as { device_keys?: unknown };
    const keys = body.device_keys;
    return typeof keys === "object" && keys !== null ? Object.keys(keys) : undefined;
  } catch {
    return undefined;
  }
}

/** The server names of a `keys/query` answer's `failures` (spec: "keyed by server name"). */
function failedServers(response: unknown): string[] {
  const failures = (response as { failures?: unknown } | null)?.failures;
  return typeof failures === "object" && failures !== null && !Array.isArray(failures)
    ? Object.keys(failures)
    : [];
}

function serverRetryAfterMs(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const value = (error as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : undefined;
}
