import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import { errorSummary } from "../errors/error-summary.js";
import { SdkError } from "../errors/sdk-error.js";
import { TypedEmitter } from "../events/emitter.js";
import { forwardPrefixed, type Prefixed } from "../events/prefixed.js";
import type { MatrixHttp } from "../http/types.js";
import type { Logger } from "../logger.js";
import type { StateStore } from "../state/state-store.js";
import type { Clock } from "../time/clock.js";
import { claimConnection, holdLock, type SyncErrorCode, whileHoldingLock } from "./connection-claim.js";
import { fetchOneTimeKeyCounts } from "./count-refresh.js";
import type { ReceivedToDeviceEvent } from "./crypto-sync.js";
import type { SyncEvents, SyncMode } from "./events.js";
import {
  CLASSIC_SYNC_PATH,
  encryptionExtensions,
  runClassicLoop,
  runSlidingEncryptionLoop,
  SLIDING_SYNC_PATH,
} from "./sync-loops.js";
import { SyncPositionStore } from "./sync-position-store.js";
import { SyncProcessor } from "./sync-processor.js";
import {
  classicSyncE2ee,
  classicSyncResponseSchema,
  parseHandedResponse,
  slidingSyncE2ee,
  slidingSyncResponseSchema,
} from "./wire-schemas.js";

/** The client's sync events: `sync.toDevice`, `sync.deviceListsChanged`, … */
export type SyncModuleEvents = Prefixed<"sync", SyncEvents>;

/** A classic `/sync` response as handed to the app: the server's JSON, checked where the SDK reads it. */
export interface ClassicSyncResponseBody {
  next_batch: string;
  [field: string]: unknown;
}

/** Options of `client.sync.start()`. */
export interface SyncStartOptions {
  /**
   * `"sliding"` (default): this SDK's own sliding-sync connection (MSC4186) carrying only the
   * `e2ee` and `to_device` extensions; the app runs its room list on its own connection.
   * `"classic"`: a classic `/sync` loop that hands every response to `onResponse`.
   */
  mode?: "sliding" | "classic";
  /** How long the server may hold a request open, ms. Default 30,000. */
  pollTimeoutMs?: number;
  /** Classic only: called with each whole response, after its encryption data was processed. */
  onResponse?: (response: ClassicSyncResponseBody) => Promise<void> | void;
  /** Classic only: a filter id or JSON filter for `/sync`. */
  filter?: string;
}

/** What `client.sync.status()` reports. */
export interface SyncStatus {
  state: "stopped" | "waiting_for_lock" | "running";
  mode: SyncMode | undefined;
  /** The last one-time-key counts the server reported; `undefined` until one arrived. */
  oneTimeKeyCounts: Readonly<Record<string, number>> | undefined;
  /** The last unused fallback-key types the server reported; `[]` means the fallback key was used. */
  unusedFallbackKeyTypes: readonly string[] | undefined;
  /** Opaque server positions: sliding `pos`, the `to_device` cursor, classic `since`. */
  positions: { pos: string | undefined; toDeviceSince: string | undefined; classicSince: string | undefined };
}

/** The `extensions` an app's own sliding-sync request must carry for this device. */
export interface EncryptionExtensionsRequest {
  e2ee: { enabled: true };
  to_device: { enabled: true; limit: number; since?: string };
}

/**
 * For an app that already runs sliding sync: this device's encryption data rides on the app's
 * connection. Put `request()` into every request's `extensions` (Synapse's are not sticky), hand
 * every response to `receive()` in order, and call `positionLost()` on `M_UNKNOWN_POS`. The
 * response's `pos` stays the app's: only the to-device cursor is kept (MSC4186 scopes a `pos` to
 * its connection, so the SDK's own loop, started later, begins its own). After `client.close()`
 * every call rejects with `client_closed`; after `release()`, with `sync_stopped`.
 */
export interface SlidingSyncExtension {
  request(): Promise<EncryptionExtensionsRequest>;
  /** The whole response (`{ pos, extensions, … }`); resolves once its crypto work is done. */
  receive(response: unknown): Promise<readonly ReceivedToDeviceEvent[]>;
  positionLost(): Promise<void>;
  /** Gives the device's connection up (also `client.sync.stop()`). */
  release(): Promise<void>;
}

/** `client.sync`: the encryption loop. */
export interface SyncApi {
  /**
   * Starts the loop. Resolves once it runs — or waits, when another tab or window of this origin
   * runs this device's loop (`sync.waitingForLock`; it takes over when that one stops). Rejects
   * with `sync_already_running` when this device's loop or extension already runs in this context.
   */
  start(options?: SyncStartOptions): Promise<void>;
  /**
   * Stops the loop or releases the extension; resolves once the connection is given up and no
   * response handed to `receive()` or `receiveClassic()` is still being processed.
   */
  stop(): Promise<void>;
  status(): Promise<SyncStatus>;
  /**
   * Claims the device's connection for the app's own sliding sync; see `SlidingSyncExtension`.
   * Takes the same Web Lock as `start()` (where the environment has Web Locks): when another tab
   * or window of this origin holds this device's connection, it waits (`sync.waitingForLock`) and
   * resolves once that one lets go — run the app's sync without these extensions meanwhile. Rejects
   * with `sync_already_running` when this context already holds the connection, and with the
   * reason of `stop()` (`sync_stopped`) or `client.close()` (`client_closed`) if either comes first.
   */
  extension(): Promise<SlidingSyncExtension>;
  /**
   * For an app's own classic `/sync` loop: processes one response's encryption data (to-device
   * events, device lists, key counts) in order. Claims the device's connection on first use, until
   * `stop()`; rejects with `sync_already_running` while `start()` or `extension()` holds it. The
   * first use takes the same Web Lock as `start()`: while another tab or window of this origin
   * holds this device's connection, this and every later call wait (`sync.waitingForLock`) — an app
   * awaiting each call before its next `/sync` thus sends no request that would acknowledge that
   * tab's to-device messages — and reject with `sync_stopped` if `stop()` comes first.
   */
  receiveClassic(response: unknown): Promise<readonly ReceivedToDeviceEvent[]>;
}

/** What the sync capability is built from. */
export interface SyncParts {
  machine: OlmMachine;
  http: MatrixHttp;
  baseUrl: string;
  userId: string;
  deviceId: string;
  stateStore: StateStore;
  cryptoStoreDurability: "memory" | "durable";
  runOutgoingRequests: () => Promise<void>;
  clock: Clock;
  random: () => number;
  logger: Logger;
  /** The owner's lifetime: stops the loop once it fires. */
  signal: AbortSignal;
  emit: (event: string, payload: unknown) => void;
}

interface Running {
  mode: SyncMode;
  /**
   * The app's own classic loop hands responses in (`receiveClassic`), as opposed to the SDK's loop
   * (`start()`) or the sliding extension: only such a claim takes further handed responses.
   */
  handed: boolean;
  controller: AbortController;
  /** Gives the claim and the Web Lock up; idempotent. */
  release: () => void;
  /** Whether `release` ran: a lock granted after it is given back at once. */
  released: boolean;
  /** Gives the Web Lock of an extension or classic feed back, once granted. */
  unlock: (() => Promise<void>) | undefined;
  /** Resolves once the Web Lock given back is free for the next holder. */
  unlocked: Promise<void>;
  /** Resolves once the claim holds the Web Lock; rejects if it was stopped while waiting for it. */
  held: Promise<void>;
  done: Promise<void>;
  state: "waiting_for_lock" | "running";
}

/** The encryption loop of one device: its own sliding sync, a classic loop, or the app's. */
export class Sync implements SyncApi {
  readonly #parts: SyncParts;
  readonly #events: TypedEmitter<SyncEvents>;
  readonly #processor: SyncProcessor;
  readonly #key: string;
  /** Across tabs and windows: one holder of this device's connection per origin. */
  readonly #lockName: string;
  #running: Running | undefined;

  constructor(parts: SyncParts) {
    this.#parts = parts;
    this.#events = new TypedEmitter<SyncEvents>(parts.logger);
    forwardPrefixed(this.#events, "sync", parts.emit);
    const emit = <K extends keyof SyncEvents>(event: K, payload: SyncEvents[K]) =>
      this.#events.emit(event, payload);
    this.#processor = new SyncProcessor({
      machine: parts.machine,
      positions: new SyncPositionStore(parts),
      runOutgoingRequests: parts.runOutgoingRequests,
      emit,
      logger: parts.logger,
      fetchOneTimeKeyCounts: () => fetchOneTimeKeyCounts(parts.http, parts.signal),
      signal: parts.signal,
    });
    this.#key = `${parts.baseUrl}|${parts.userId}|${parts.deviceId}`;
    this.#lockName = `matrix-e2ee-devices/sync/${parts.userId}/${parts.deviceId}`;
  }

  async start(options: SyncStartOptions = {}): Promise<void> {
    const mode = options.mode ?? "sliding";
    const pollTimeoutMs = options.pollTimeoutMs ?? 30_000;
    if (!(Number.isInteger(pollTimeoutMs) && pollTimeoutMs >= 0)) {
      throw new SdkError<SyncErrorCode>("invalid_options", "pollTimeoutMs must be a non-negative integer");
    }
    const running = this.#claim(mode);
    const { signal } = running.controller;
    const loopParts = {
      http: this.#parts.http,
      processor: this.#processor,
      clock: this.#parts.clock,
      random: this.#parts.random,
      pollTimeoutMs,
      retryBaseMs: 1_000,
      retryCapMs: 60_000,
      emit: (event: "error", payload: SyncEvents["error"]) => this.#events.emit(event, payload),
    };
    let started!: () => void;
    const startedOrWaiting = new Promise<void>((resolve) => {
      started = resolve;
    });
    const lockName = this.#lockName;
    running.done = whileHoldingLock(
      lockName,
      signal,
      () => {
        running.state = "waiting_for_lock";
        this.#events.emit("waitingForLock", { mode, lockName });
        started();
      },
      async () => {
        running.state = "running";
        this.#events.emit("running", { mode });
        started();
        if (mode === "sliding") await runSlidingEncryptionLoop(loopParts, signal);
        else await runClassicLoop({ ...loopParts, filter: options.filter }, options.onResponse, signal);
      },
    )
      .catch((error: unknown) => {
        if (!signal.aborted)
          this.#parts.logger.error("the sync loop ended unexpectedly", errorSummary(error));
      })
      .finally(() => {
        started();
        this.#finish(running);
      });
    await startedOrWaiting;
  }

  async stop(): Promise<void> {
    const running = this.#running;
    if (running !== undefined) {
      running.controller.abort(new SdkError<SyncErrorCode>("sync_stopped", "the sync was stopped"));
      await running.done;
      this.#finish(running);
      await running.unlocked;
    }
    // The extension and the classic feed hand responses in outside any loop: one may still be in
    // its crypto call (the client closes the machine once this resolves).
    await this.#processor.idle();
  }

  async status(): Promise<SyncStatus> {
    if (this.#parts.signal.aborted) throw this.#parts.signal.reason;
    const { oneTimeKeyCounts, unusedFallbackKeyTypes } = this.#processor.state;
    const { pos, toDeviceSince, classicSince } = this.#processor.positions;
    return {
      state: this.#running?.state ?? "stopped",
      mode: this.#running?.mode,
      oneTimeKeyCounts,
      unusedFallbackKeyTypes,
      positions: { pos, toDeviceSince, classicSince },
    };
  }

  async extension(): Promise<SlidingSyncExtension> {
    const running = this.#claim("extension");
    await this.#holdLock(running);
    const processor = this.#processor;
    const assertHeld = () => {
      // The client's close outranks the release it implies: every call of a closed client says so.
      if (this.#parts.signal.aborted) throw this.#parts.signal.reason;
      if (this.#running !== running) {
        throw new SdkError<SyncErrorCode>("sync_stopped", "this sync extension was released");
      }
    };
    return {
      request: async () => {
        assertHeld();
        await processor.load();
        return encryptionExtensions(processor.positions.toDeviceSince);
      },
      receive: async (response) => {
        assertHeld();
        const parsed = parseHandedResponse(slidingSyncResponseSchema, response, {
          method: "POST",
          path: SLIDING_SYNC_PATH,
        });
        // Not its `pos`: that is the app's connection's, which the SDK's own loop (another
        // `conn_id`) cannot resume — MSC4186 positions belong to one connection.
        return processor.process("extension", slidingSyncE2ee(parsed), {});
      },
      positionLost: async () => {
        assertHeld();
        await processor.positionLost("extension");
      },
      release: async () => {
        if (this.#running === running) this.#finish(running);
        await running.unlocked;
      },
    };
  }

  async receiveClassic(response: unknown): Promise<readonly ReceivedToDeviceEvent[]> {
    let current = this.#running;
    // A response handed in while `start({ mode: "classic" })` runs would be a second reader of the
    // device's to-device stream: its `next_batch` would race the loop's own.
    if (current?.handed !== true || current.controller.signal.aborted) {
      current = this.#claim("classic", true);
      void this.#holdLock(current).catch(() => {});
    }
    // Every response waits for the lock the first one asked for: none is processed beside another
    // tab's loop.
    await current.held;
    const parsed = parseHandedResponse(classicSyncResponseSchema, response, {
      method: "GET",
      path: CLASSIC_SYNC_PATH,
    });
    return this.#processor.process("classic", classicSyncE2ee(parsed), { classicSince: parsed.next_batch });
  }

  /** Stops whatever runs; the client's `close()`. */
  close(): Promise<void> {
    return this.stop();
  }

  #claim(mode: SyncMode, handed = false): Running {
    // The owner's close reason (the client's `client_closed`).
    if (this.#parts.signal.aborted) throw this.#parts.signal.reason;
    if (this.#running !== undefined) {
      throw new SdkError<SyncErrorCode>(
        "sync_already_running",
        `this client's sync already runs (${this.#running.mode})`,
        {
          details: { mode: this.#running.mode },
        },
      );
    }
    const release = claimConnection(this.#key);
    this.#processor.startRun();
    const controller = new AbortController();
    const onClose = () => controller.abort(this.#parts.signal.reason);
    this.#parts.signal.addEventListener("abort", onClose, { once: true });
    const running: Running = {
      mode,
      handed,
      controller,
      release: () => {
        running.released = true;
        this.#parts.signal.removeEventListener("abort", onClose);
        if (running.unlock !== undefined) running.unlocked = running.unlock();
        running.unlock = undefined;
        release();
      },
      released: false,
      unlock: undefined,
      unlocked: Promise.resolve(),
      held: Promise.resolve(),
      done: Promise.resolve(),
      state: "running",
    };
    this.#running = running;
    return running;
  }

  /**
   * Takes the Web Lock `start()` runs under for a claim that outlives one call (the extension, the
   * classic feed) and reports it running once held. Waiting, it is `waiting_for_lock`; `stop()` or
   * `close()` ends the wait, and the claim with it (the rejection is the abort reason).
   */
  async #holdLock(running: Running): Promise<void> {
    const { signal } = running.controller;
    running.held = holdLock(this.#lockName, signal, () => {
      running.state = "waiting_for_lock";
      this.#events.emit("waitingForLock", { mode: running.mode, lockName: this.#lockName });
    }).then((unlock) => {
      if (running.released) {
        running.unlocked = unlock();
        throw signal.reason ?? new SdkError<SyncErrorCode>("sync_stopped", "the sync was stopped");
      }
      running.unlock = unlock;
      running.state = "running";
      this.#events.emit("running", { mode: running.mode });
    });
    // `stop()` waits for the wait to end before it reports the claim stopped.
    running.done = running.held.catch(() => {});
    try {
      await running.held;
    } catch (error) {
      this.#finish(running);
      throw error;
    }
  }

  #finish(running: Running): void {
    running.release();
    if (this.#running !== running) return;
    this.#running = undefined;
    this.#events.emit("stopped", { mode: running.mode });
  }
}
