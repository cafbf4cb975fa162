import { AbortError } from "../../errors/abort-error.js";
import { errorSummary } from "../../errors/error-summary.js";
import { TypedEmitter } from "../../events/emitter.js";
import type { MatrixHttp } from "../../http/types.js";
import { type Logger, prefixedLogger, silentLogger } from "../../logger.js";
import type { SecretStorageKey } from "../../secret-storage/secret-storage.js";
import type { StateStore } from "../../state/state-store.js";
import { type Clock, systemClock } from "../../time/clock.js";
import { type DrainCheckpoint, DrainCheckpointStore } from "./checkpoint-store.js";
import {
  type DrainPageSource,
  type DrainResumeState,
  type DrainRunResult,
  type DrainTuning,
  type ReceivedRoomKey,
  runDrain,
} from "./drain-loop.js";
import { asDrainError } from "./errors.js";
import type { DrainEvents } from "./events.js";
import { HttpDrainPageSource } from "./page-source.js";
import type { PaginationLimits } from "./pagination.js";

/** The rehydrated device as the drain needs it (`RehydratedDevice` fits). */
export interface DrainableDevice {
  readonly deviceId: string;
  /** Imports one batch of to-device events; resolves with the room keys it stored. */
  receiveEvents(events: readonly unknown[]): Promise<readonly ReceivedRoomKey[]>;
  free(): void;
}

/** What the drain needs of the dehydration manager (`DehydrationManager` fits). */
export interface DrainRehydrator {
  /** Fetches, validates and opens the server's device; `undefined` when there is none. */
  rehydrate(options?: {
    secretStorageKey?: SecretStorageKey;
    signal?: AbortSignal;
    onDevice?: (deviceId: string) => void;
  }): Promise<DrainableDevice | undefined>;
}

/** What the drainer works with; the tuning fields apply to every drain it runs. */
export interface DehydratedDeviceDrainerOptions extends DrainTuning {
  rehydrator: DrainRehydrator;
  http: MatrixHttp;
  /** The logged-in user: checkpoints are kept per user. */
  userId: string;
  stateStore: StateStore;
  /**
   * How durable the crypto store holding the room keys is: `"durable"` for an IndexedDB store in a
   * browser or Electron renderer, `"memory"` for an in-memory machine (and `fake-indexeddb`).
   * Checkpoints are never kept more durably than this (see `checkpoint-store.ts`).
   */
  cryptoStoreDurability: "memory" | "durable";
  clock?: Clock | undefined;
  logger?: Logger | undefined;
  /** Replaces the HTTP page source (benchmarks, tests of the drain alone). */
  pageSource?: DrainPageSource | undefined;
  /**
   * Aborts every drain, the one in flight and any later one, once it fires: the owner's lifetime
   * (the client passes its close signal, so no drain touches a closed machine).
   */
  signal?: AbortSignal | undefined;
}

/** Per-call options of `drain()`. */
export interface DrainCallOptions {
  /** The unlocked secret-storage key, to read the dehydration key (else the manager's fallback). */
  secretStorageKey?: SecretStorageKey | undefined;
  /** Ignore any checkpoint and start from the first page (re-importing is harmless, only slower). */
  restart?: boolean | undefined;
  /** Overrides the drainer's limits for this call. */
  limits?: Partial<PaginationLimits> | undefined;
  signal?: AbortSignal | undefined;
}

/** What `drain()` resolves to: there was no device, or the run's result. */
export type DrainOutcome = { outcome: "no_device" } | DrainRunResult;

/**
 * Drains the server's dehydrated device into this login's crypto store (MSC3814, "Rehydrating a
 * device"): fetch, validate and open the device, then every page of its to-device events
 * through the pipelined, sliced, checkpointed engine in `drain-loop.ts`.
 *
 * A checkpoint for a device that is no longer the server's is dropped; one for the current device
 * is resumed from (after a truncated run, that is its trusted position: `drain-loop.ts`). Every
 * failure leaves the device on the server and the checkpoint as it was after the last stored page,
 * and is reported both as the rejection — always a `DrainError`, the underlying error as its
 * `cause` — and as an `error` event.
 */
export class DehydratedDeviceDrainer {
  readonly events: TypedEmitter<DrainEvents>;
  readonly checkpoints: DrainCheckpointStore;
  readonly #options: DehydratedDeviceDrainerOptions;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #source: Promise<DrainPageSource> | undefined;
  #running: { outcome: Promise<DrainOutcome>; stop: AbortController } | undefined;

  constructor(options: DehydratedDeviceDrainerOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#logger = prefixedLogger(options.logger ?? silentLogger, "[dehydration drain]");
    this.events = new TypedEmitter<DrainEvents>(this.#logger);
    this.checkpoints = new DrainCheckpointStore({
      stateStore: options.stateStore,
      userId: options.userId,
      cryptoStoreDurability: options.cryptoStoreDurability,
    });
  }

  /**
   * Drains the server's current device. A call while a drain runs joins it (its options are
   * ignored). Resolves to `{outcome: "no_device"}`, a completed or a truncated result.
   */
  drain(options: DrainCallOptions = {}): Promise<DrainOutcome> {
    if (this.#running === undefined) {
      const stop = new AbortController();
      const signals = [options.signal, this.#options.signal, stop.signal].filter((s) => s !== undefined);
      const signal = AbortSignal.any(signals);
      const running = {
        stop,
        outcome: this.#drain({ ...options, signal }).finally(() => {
          if (this.#running === running) this.#running = undefined;
        }),
      };
      this.#running = running;
    }
    return this.#running.outcome;
  }

  /**
   * Aborts the drain in flight, if any, and resolves once it has settled: it rejects with
   * `DrainError` `aborted`, its checkpoint still after the last stored page, and the rehydrated
   * device is freed. The drainer stays usable; a later `drain()` resumes from that checkpoint.
   */
  async stop(): Promise<void> {
    const running = this.#running;
    if (running === undefined) return;
    running.stop.abort(new AbortError("The drain"));
    await running.outcome.then(
      () => {},
      () => {},
    );
  }

  async #drain(options: DrainCallOptions & { signal: AbortSignal }): Promise<DrainOutcome> {
    const { signal } = options;
    let deviceId: string | undefined;
    let checkpoint: DrainCheckpoint | undefined;
    try {
      // Stopped already (the client closed): send nothing.
      if (signal.aborted) throw signal.reason;
      // The device lookup, its validation, the key and the checkpoint are independent reads:
      // they go out together, so the first page waits for one round trip, not five.
      const [stored, device] = await Promise.all([
        this.checkpoints.load(),
        this.#options.rehydrator.rehydrate({
          ...(options.secretStorageKey === undefined ? {} : { secretStorageKey: options.secretStorageKey }),
          signal,
          onDevice: (id) => {
            deviceId = id;
          },
        }),
      ]);
      if (device === undefined) {
        await this.checkpoints.clear();
        return { outcome: "no_device" };
      }
      try {
        deviceId = device.deviceId;
        checkpoint = await this.#checkpointFor(stored, deviceId, options.restart ?? false);
        this.events.emit("found", { deviceId, resumeFrom: checkpoint?.position.cursor });
        this.events.emit("rehydrated", { deviceId });
        return await this.#run(device, checkpoint, options);
      } finally {
        device.free();
      }
    } catch (caught) {
      const error = asDrainError(caught, signal, {
        deviceId,
        cursor: checkpoint?.position.cursor,
        pages: checkpoint?.position.pages ?? 0,
        events: checkpoint?.position.events ?? 0,
        roomKeys: checkpoint?.position.roomKeys ?? 0,
      });
      if (error.code === "device_gone") await this.checkpoints.clear().catch(() => {});
      this.#logger.warn("drain failed", errorSummary(error));
      this.events.emit("error", { deviceId, error });
      throw error;
    }
  }

  async #run(
    device: DrainableDevice,
    resumeFrom: DrainResumeState | undefined,
    options: DrainCallOptions,
  ): Promise<DrainRunResult> {
    const deviceId = device.deviceId;
    const result = await runDrain({
      deviceId,
      source: await this.#pageSource(),
      sink: { receive: (events) => device.receiveEvents(events) },
      clock: this.#clock,
      resumeFrom,
      onPageStored: async (report) => {
        if (report.resume !== undefined) {
          await this.checkpoints.save({
            deviceId,
            ...report.resume,
            complete: report.next === "end",
            savedAtMs: this.#clock.now(),
          });
        }
        this.events.emit("page", report);
      },
      limits: { ...this.#options.limits, ...options.limits },
      sliceBudgetMs: this.#options.sliceBudgetMs,
      sliceSize: this.#options.sliceSize,
      targetPageBytes: this.#options.targetPageBytes,
      pipelined: this.#options.pipelined,
      yieldToEventLoop: this.#options.yieldToEventLoop,
      signal: options.signal,
    });
    if (result.outcome === "completed") {
      this.#logger.info(
        `drained ${deviceId}: ${result.run.events} events, ${result.run.roomKeys} room keys in ${result.durationMs} ms`,
      );
      this.events.emit("completed", {
        deviceId,
        endReason: result.endReason,
        totals: result.totals,
        run: result.run,
        importedKeys: result.importedKeys,
        durationMs: result.durationMs,
        longestSliceMs: result.longestSliceMs,
        resumedFrom: result.resumedFrom,
      });
    } else {
      this.#logger.warn(
        `drain of ${deviceId} truncated (${result.reason}); the device is kept and the next drain ` +
          "starts again from the last trusted position",
      );
      this.events.emit("truncated", {
        deviceId,
        reason: result.reason,
        totals: result.totals,
        cursor: result.cursor,
        untrustedCursor: result.untrustedCursor,
        importedKeys: result.importedKeys,
      });
    }
    return result;
  }

  /** The checkpoint to resume from; one for another device (or when restarting) is dropped. */
  async #checkpointFor(
    checkpoint: DrainCheckpoint | undefined,
    deviceId: string,
    restart: boolean,
  ): Promise<DrainCheckpoint | undefined> {
    if (checkpoint === undefined) return undefined;
    if (!restart && checkpoint.deviceId === deviceId) return checkpoint;
    if (checkpoint.deviceId !== deviceId) {
      this.#logger.info(
        `dropping the checkpoint of ${checkpoint.deviceId}: the server's device is ${deviceId}`,
      );
    }
    await this.checkpoints.clear();
    return undefined;
  }

  /** One HTTP source per drainer, so the variant learnt on the first page serves every later one. */
  #pageSource(): Promise<DrainPageSource> {
    if (this.#options.pageSource !== undefined) return Promise.resolve(this.#options.pageSource);
    this.#source ??= this.checkpoints
      .loadVariant()
      // Not knowing the variant only costs one negotiation.
      .catch(() => undefined)
      .then(
        (variant) =>
          new HttpDrainPageSource(this.#options.http, {
            variant,
            onVariantLearned: (learned) => {
              this.checkpoints.saveVariant(learned).catch((error: unknown) => {
                this.#logger.warn("could not remember the events variant", errorSummary(error));
              });
            },
          }),
      );
    return this.#source;
  }
}
