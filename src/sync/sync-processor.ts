import type { Logger } from "../logger.js";
import { needsCountRefresh, withCounts } from "./count-refresh.js";
import { applyCryptoSyncCall, type ReceivedToDeviceEvent, type SyncMachine } from "./crypto-sync.js";
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
  machine: SyncMachine & { markAllTrackedUsersAsDirty(): Promise<void> };
  positions: SyncPositionStore;
  /** Sends what the machine queued (key uploads, key queries); never rejects. */
  runOutgoingRequests: () => Promise<void>;
  emit: <K extends keyof SyncEvents>(event: K, payload: SyncEvents[K]) => void;
  logger: Logger;
  /** Asks the server for this device's one-time-key counts (see `count-refresh.ts`). */
  fetchOneTimeKeyCounts?: (() => Promise<Record<string, number>>) | undefined;
}

/**
 * Processes sync responses strictly one after another, each in the same order: reduce, the one
 * crypto call, the events, and only then the positions are saved — so a crash or a failed crypto
 * call leaves the server's cursor where it was, and the batch is delivered again (a replay is
 * harmless: crypto-wasm ignores what it already has). Then the machine's requests go out, so a
 * low key count is topped up and changed device lists are queried before the next response.
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

  /** Loads the saved positions once a run; later calls return the same. */
  load(): Promise<SyncPositions> {
    this.#loaded ??= this.#parts.positions.load().then((positions) => {
      this.#positions = positions;
      this.#state = { ...this.#state, toDeviceSince: positions.toDeviceSince };
      return positions;
    });
    return this.#loaded;
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
      const { state, call } = reduceSyncE2ee(this.#state, await this.#completeCounts(response));
      this.#firstOfRun = false;
      const events = await applyCryptoSyncCall(this.#parts.machine, call, this.#parts.logger);
      this.#state = state;
      if (events.length > 0) this.#parts.emit("toDevice", { mode, events });
      if (call.changed.length > 0 || call.left.length > 0) {
        this.#parts.emit("deviceListsChanged", { mode, changed: call.changed, left: call.left });
      }
      await beforeSave?.();
      await this.#save(mode, { ...this.#positions, ...next, toDeviceSince: state.toDeviceSince });
      await this.#parts.runOutgoingRequests();
      return events;
    });
  }

  /**
   * The server forgot the sliding-sync position: drop it (never the to-device cursor, which the
   * server keeps per device) and mark every tracked user's device list for re-query.
   */
  positionLost(mode: SyncMode): Promise<void> {
    return this.#exclusive(async () => {
      await this.load();
      await this.#parts.machine.markAllTrackedUsersAsDirty();
      // A new connection: its first answer may omit counts that changed meanwhile.
      this.#firstOfRun = true;
      await this.#save(mode, { ...this.#positions, pos: undefined });
      this.#parts.emit("positionLost", { mode });
      await this.#parts.runOutgoingRequests();
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

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => {});
    return run;
  }
}
