import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import type { Logger } from "../logger.js";
import { needsCountRefresh, withCounts } from "./count-refresh.js";
import { applyCryptoSyncCall, type ReceivedToDeviceEvent, type SyncMachine } from "./crypto-sync.js";
import { dropFromDehydratedDevices } from "./dehydrated-senders.js";
import {
  type E2eeSyncState,
  initialE2eeSyncState,
  reduceSyncE2ee,
  type SyncE2eeResponse,
} from "./e2ee-changes.js";
import type { SyncEvents, SyncMode } from "./events.js";
import { noSyncPositions, type SyncPositionStore, type SyncPositions } from "./sync-position-store.js";

/** What processing a response needs besides the machine. */
export interface SyncProcessorParts {
  machine: SyncMachine & Pick<OlmMachine, "getDevice" | "markAllTrackedUsersAsDirty">;
  positions: SyncPositionStore;
  /** Sends what the machine queued (key uploads, key queries); never rejects. */
  runOutgoingRequests: () => Promise<void>;
  emit: <K extends keyof SyncEvents>(event: K, payload: SyncEvents[K]) => void;
  logger: Logger;
  /** Asks the server for this device's one-time-key counts (see `count-refresh.ts`). */
  fetchOneTimeKeyCounts?: (() => Promise<Record<string, number>>) | undefined;
  /**
   * The owner's lifetime (the client's close): once it fires, no job that has not started yet
   * touches the machine; each rejects with the signal's reason.
   */
  signal: AbortSignal;
}

/**
 * Processes sync responses strictly one after another, each in the same order: reduce, the one
 * crypto call, the events, and only then the positions are saved — so a crash or a failed crypto
 * call leaves the server's cursor where it was, and the batch is delivered again (a replay is
 * harmless: crypto-wasm ignores what it already has). Then the machine's requests go out, so a
 * low key count is topped up and changed device lists are queried before the next response.
 *
 * Whoever closes the machine first waits for `idle()`: a job already in its crypto call finishes
 * it, and every job queued behind it rejects without touching the machine.
 */
export class SyncProcessor {
  readonly #parts: SyncProcessorParts;
  #state: E2eeSyncState = initialE2eeSyncState;
  #positions: SyncPositions = noSyncPositions;
  #loaded: Promise<SyncPositions> | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  /** Whether the next response is the first of a run (after `startRun()`). */
  #firstOfRun = true;

  constructor(parts: SyncProcessorParts) {
    this.#parts = parts;
  }

  get state(): E2eeSyncState {
    return this.#state;
  }

  get positions(): SyncPositions {
    return this.#positions;
  }

  /**
   * Loads the saved positions once a run; later calls return the same. A failed read is not kept:
   * the next call reads again.
   */
  load(): Promise<SyncPositions> {
    if (this.#loaded !== undefined) return this.#loaded;
    const loading = this.#parts.positions.load().then((positions) => {
      this.#positions = positions;
      return positions;
    });
    this.#loaded = loading;
    loading.catch(() => {
      if (this.#loaded === loading) this.#loaded = undefined;
    });
    return loading;
  }

  /**
   * A loop (re)starts: its positions are read again from the store (another tab may have moved
   * them while this one waited for the lock), and its first response may need the counts fetched
   * (`count-refresh.ts`).
   */
  startRun(): void {
    this.#firstOfRun = true;
    this.#loaded = undefined;
  }

  /** Resolves once every job queued so far has settled; never rejects. */
  idle(): Promise<void> {
    return this.#queue.then(() => undefined);
  }

  /**
   * Processes one response; `next` are the positions it moves to (its `pos`, its `next_batch`).
   * `beforeSave` runs after the crypto call and before the positions are saved (the classic loop
   * hands the response to the app there). Rejects when the crypto call fails: nothing changed.
   */
  process(
    mode: SyncMode,
    response: SyncE2eeResponse,
    next: Partial<SyncPositions>,
    beforeSave?: () => Promise<void>,
  ): Promise<readonly ReceivedToDeviceEvent[]> {
    return this.#exclusive(async () => {
      await this.load();
      const completed = await this.#completeCounts(response);
      // The counts request may have outlived the owner: the crypto call would then reach a machine
      // that is about to close.
      this.#assertOpen();
      const { state, call: reduced, toDeviceNextBatch } = reduceSyncE2ee(this.#state, completed);
      const { kept, dropped } = await dropFromDehydratedDevices(this.#parts.machine, reduced.toDeviceEvents);
      const call = { ...reduced, toDeviceEvents: kept };
      const events = await applyCryptoSyncCall(this.#parts.machine, call, this.#parts.logger);
      // Only once the machine has taken the response: a first response whose crypto call failed
      // is still the first when it is delivered again, and its counts are fetched again.
      this.#firstOfRun = false;
      this.#state = state;
      if (dropped.length > 0) this.#parts.emit("toDeviceDropped", { mode, events: dropped });
      if (events.length > 0) this.#parts.emit("toDevice", { mode, events });
      if (call.changed.length > 0 || call.left.length > 0) {
        this.#parts.emit("deviceListsChanged", { mode, changed: call.changed, left: call.left });
      }
      await beforeSave?.();
      await this.#save(mode, {
        ...this.#positions,
        ...next,
        toDeviceSince: toDeviceNextBatch ?? this.#positions.toDeviceSince,
      });
      await this.#sendOutgoingRequests();
      return events;
    });
  }

  /**
   * The server forgot the sliding-sync position: drop it (never the to-device cursor, which the
   * server keeps per device) and mark every tracked user's device list for re-query. On the app's
   * connection (`extension`) the stored `pos` is not the one lost — it is the SDK's own
   * connection's (see `SyncPositions`) — and stays.
   */
  positionLost(mode: SyncMode): Promise<void> {
    return this.#exclusive(async () => {
      await this.load();
      await this.#parts.machine.markAllTrackedUsersAsDirty();
      // A new connection: its first answer may omit counts that changed meanwhile.
      this.#firstOfRun = true;
      if (mode !== "extension") await this.#save(mode, { ...this.#positions, pos: undefined });
      this.#parts.emit("positionLost", { mode });
      await this.#sendOutgoingRequests();
    });
  }

  async #completeCounts(response: SyncE2eeResponse): Promise<SyncE2eeResponse> {
    const fetch = this.#parts.fetchOneTimeKeyCounts;
    if (fetch === undefined || !needsCountRefresh(response, this.#firstOfRun)) return response;
    try {
      return withCounts(response, await fetch());
    } catch {
      // Without it the response is read as it came: counts unchanged, as MSC3884 says.
      this.#parts.logger.warn("could not fetch the one-time-key counts");
      return response;
    }
  }

  async #save(mode: SyncMode, positions: SyncPositions): Promise<void> {
    this.#positions = positions;
    try {
      await this.#parts.positions.save(positions);
    } catch (error) {
      // Kept in memory: a reload then replays from the last saved cursor, which loses nothing.
      this.#parts.logger.warn("could not save the sync positions");
      this.#parts.emit("error", { mode, stage: "store", error, retryInMs: undefined });
    }
  }

  /**
   * The machine's requests, sent before the next response. Not waited for past the owner's close:
   * the owner stops the outgoing-request loop itself (and waits for it) before it closes the
   * machine, and what the machine still wants sent waits for the next session.
   */
  async #sendOutgoingRequests(): Promise<void> {
    const { signal } = this.#parts;
    if (signal.aborted) return;
    let onAbort!: () => void;
    const aborted = new Promise<void>((resolve) => {
      onAbort = resolve;
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      await Promise.race([this.#parts.runOutgoingRequests(), aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  #assertOpen(): void {
    const { signal } = this.#parts;
    if (signal.aborted) throw signal.reason;
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    // Checked when the job starts, not when it was queued: a job queued before the owner closed
    // must not begin crypto work while the owner waits for `idle()` to close the machine.
    const job = () => {
      this.#assertOpen();
      return work();
    };
    const run = this.#queue.then(job, job);
    this.#queue = run.catch(() => {});
    return run;
  }
}
