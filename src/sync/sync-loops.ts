import { backoffDelay } from "../crypto/outgoing-requests.js";
import { isMatrixApiError } from "../errors/matrix-api-error.js";
import type { MatrixHttp } from "../http/types.js";
import type { Clock } from "../time/clock.js";
import type { SyncMode } from "./events.js";
import type { SyncProcessor } from "./sync-processor.js";
import {
  type ClassicSyncResponse,
  classicSyncE2ee,
  classicSyncResponseSchema,
  slidingSyncE2ee,
  slidingSyncResponseSchema,
} from "./wire-schemas.js";

/** Where Synapse, tuwunel and continuwuity serve simplified sliding sync (MSC4186). */
export const SLIDING_SYNC_PATH = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync";
export const CLASSIC_SYNC_PATH = "/_matrix/client/v3/sync";

/** This SDK's own sliding-sync connection: only the encryption extensions, no room lists. */
export const ENCRYPTION_CONN_ID = "matrix-e2ee-devices-encryption";

/**
 * To-device messages asked for per response. Never 0 or less: on Synapse `limit: 0` answers no
 * events but a `next_batch` at the stream's head, and the next `since` deletes every message that
 * was never delivered (`deviceinbox.py` `get_messages_for_device`); a negative limit reaches SQL.
 */
export const TO_DEVICE_LIMIT = 100;

/** The `extensions` of an encryption request (MSC3884 `e2ee`, MSC3885 `to_device`). */
export function encryptionExtensions(toDeviceSince: string | undefined): {
  e2ee: { enabled: true };
  to_device: { enabled: true; limit: number; since?: string };
} {
  // Sent in full on every request: Synapse's extensions are not sticky.
  return {
    e2ee: { enabled: true },
    to_device: {
      enabled: true,
      limit: TO_DEVICE_LIMIT,
      ...(toDeviceSince === undefined ? {} : { since: toDeviceSince }),
    },
  };
}

/** What both loops work with. */
export interface SyncLoopParts {
  http: MatrixHttp;
  processor: SyncProcessor;
  clock: Clock;
  random: () => number;
  /** Long-poll timeout asked of the server, ms. */
  pollTimeoutMs: number;
  retryBaseMs: number;
  retryCapMs: number;
  emit: (
    event: "error",
    payload: { mode: SyncMode; stage: LoopStage; error: unknown; retryInMs: number },
  ) => void;
}

/** The step of a loop that failed: reading the saved positions, the request, or processing the answer. */
type LoopStage = "store" | "request" | "process";

/**
 * Retries a failed step on the clock, honouring a server's `retry_after_ms`/`Retry-After` up to
 * `retryCapMs` (a server asking for hours would otherwise stall the device's to-device stream).
 */
class Backoff {
  #failures = 0;
  readonly #parts: SyncLoopParts;

  constructor(parts: SyncLoopParts) {
    this.#parts = parts;
  }

  reset(): void {
    this.#failures = 0;
  }

  async wait(mode: SyncMode, stage: LoopStage, error: unknown, signal: AbortSignal): Promise<void> {
    this.#failures++;
    const { retryBaseMs, retryCapMs, random, clock } = this.#parts;
    const serverSays = isMatrixApiError(error) ? (error.retryAfterMs ?? 0) : 0;
    const retryInMs = Math.max(
      backoffDelay(this.#failures, retryBaseMs, retryCapMs, random),
      Math.min(serverSays, retryCapMs),
    );
    this.#parts.emit("error", { mode, stage, error, retryInMs });
    await clock.sleep(retryInMs, signal);
  }
}

/**
 * Reads the loop's saved positions (once a run; later calls return them at once). A failed read is
 * a `store` error, retried after the backoff: going on without them would start the connection
 * over and overwrite what is saved. Resolves whether they were read.
 */
async function loadPositions(
  processor: SyncProcessor,
  backoff: Backoff,
  mode: SyncMode,
  signal: AbortSignal,
): Promise<boolean> {
  try {
    await processor.load();
    return true;
  } catch (error) {
    if (!signal.aborted) await sleepOrStop(() => backoff.wait(mode, "store", error, signal));
    return false;
  }
}

/**
 * Whether a failed request says the server no longer knows the `pos` it sent. MSC4186 names
 * `M_UNKNOWN_POS`; Synapse answers a `pos` it cannot parse (another connection's, another
 * server's) with 400 `M_UNKNOWN` "Invalid stream token", and would answer that `pos` so on every
 * retry. Only a request that sent a `pos` can have lost it. Said to one without (no server does:
 * Synapse's `handlers/sliding_sync/room_lists.py` and tuwunel's `sync/v5.rs` raise it for a given
 * `pos` only), it is server trouble like any other, and retrying at once would spin.
 */
function positionForgotten(error: unknown, pos: string | undefined): boolean {
  if (pos === undefined || !isMatrixApiError(error)) return false;
  return error.errcode === "M_UNKNOWN_POS" || (error.status === 400 && error.errcode === "M_UNKNOWN");
}

/**
 * The encryption sync on its own sliding-sync connection, as matrix-rust-sdk's encryption sync
 * service does: only `e2ee` and `to_device`, responses processed in order, positions saved after
 * each crypto call. Runs until `signal` aborts; resolves then (never rejects for server trouble).
 */
export async function runSlidingEncryptionLoop(parts: SyncLoopParts, signal: AbortSignal): Promise<void> {
  const { http, processor } = parts;
  const backoff = new Backoff(parts);
  let first = true;
  while (!signal.aborted) {
    if (!(await loadPositions(processor, backoff, "sliding", signal))) continue;
    const pos = processor.positions.pos;
    let response: Awaited<ReturnType<typeof request>>;
    const request = () =>
      http.request({
        method: "POST",
        path: SLIDING_SYNC_PATH,
        // The first request answers at once with the current state; later ones long-poll.
        query: { pos, timeout: first ? 0 : parts.pollTimeoutMs },
        body: {
          conn_id: ENCRYPTION_CONN_ID,
          extensions: encryptionExtensions(processor.positions.toDeviceSince),
        },
        schema: slidingSyncResponseSchema,
        // Repeating a request with the same `pos` and `since` is a replay the server allows.
        retry: "safe",
        timeoutMs: parts.pollTimeoutMs + 30_000,
        signal,
      });
    try {
      response = await request();
    } catch (error) {
      if (signal.aborted) return;
      if (positionForgotten(error, pos)) {
        try {
          await processor.positionLost("sliding");
        } catch (lost) {
          // The device lists could not be marked for re-query: the position stays until they are,
          // so no device-list change the server will not resend is skipped — after a backoff, as
          // the same `pos` will be refused again.
          if (signal.aborted) return;
          await sleepOrStop(() => backoff.wait("sliding", "process", lost, signal));
          continue;
        }
        first = true;
        continue;
      }
      await sleepOrStop(() => backoff.wait("sliding", "request", error, signal));
      continue;
    }
    try {
      await processor.process("sliding", slidingSyncE2ee(response), { pos: response.pos });
    } catch (error) {
      if (signal.aborted) return;
      // Nothing was acknowledged: the same request (same `pos`, same `since`) asks again.
      await sleepOrStop(() => backoff.wait("sliding", "process", error, signal));
      continue;
    }
    first = false;
    backoff.reset();
  }
}

/**
 * A ready classic `/sync` loop: each response's encryption data goes to the crypto layer, then the
 * whole response to the app's `onResponse`, and only then is `next_batch` saved (to-device
 * messages are deleted by the server once a request carries the `since` after them).
 */
export async function runClassicLoop(
  parts: SyncLoopParts & { filter: string | undefined },
  onResponse:
    | ((
        response: ClassicSyncResponse & { next_batch: string; [field: string]: unknown },
      ) => Promise<void> | void)
    | undefined,
  signal: AbortSignal,
): Promise<void> {
  const { http, processor } = parts;
  const backoff = new Backoff(parts);
  while (!signal.aborted) {
    if (!(await loadPositions(processor, backoff, "classic", signal))) continue;
    const since = processor.positions.classicSince;
    let response: ClassicSyncResponse;
    try {
      response = await http.request({
        method: "GET",
        path: CLASSIC_SYNC_PATH,
        query: { since, timeout: since === undefined ? 0 : parts.pollTimeoutMs, filter: parts.filter },
        schema: classicSyncResponseSchema,
        timeoutMs: parts.pollTimeoutMs + 30_000,
        signal,
      });
    } catch (error) {
      if (signal.aborted) return;
      await sleepOrStop(() => backoff.wait("classic", "request", error, signal));
      continue;
    }
    try {
      await processor.process(
        "classic",
        classicSyncE2ee(response),
        { classicSince: response.next_batch },
        async () => onResponse?.(response),
      );
    } catch (error) {
      if (signal.aborted) return;
      await sleepOrStop(() => backoff.wait("classic", "process", error, signal));
      continue;
    }
    backoff.reset();
  }
}

/** A sleep cut short by `stop()` ends the loop quietly. */
async function sleepOrStop(sleep: () => Promise<void>): Promise<void> {
  await sleep().catch(() => {});
}
