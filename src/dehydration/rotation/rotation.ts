import { errorSummary } from "../../errors/error-summary.js";
import { SdkError } from "../../errors/sdk-error.js";
import { TypedEmitter } from "../../events/emitter.js";
import { type Logger, prefixedLogger, silentLogger } from "../../logger.js";
import type { SecretStorageKey } from "../../secret-storage/secret-storage.js";
import type { StateStore } from "../../state/state-store.js";
import { type Clock, systemClock } from "../../time/clock.js";
import { isDehydrationError } from "../device/errors.js";
import type { DrainCallOptions, DrainOutcome } from "../drain/drainer.js";
import type { PaginationTruncationReason } from "../drain/pagination.js";
import { RotationRecordStore } from "./record-store.js";
import {
  defaultRotateEveryMs,
  planRotationStep,
  type RotationRecord,
  type RotationStep,
  rotationRetryDelayMs,
} from "./rotation-plan.js";

/** What rotation needs of the dehydration manager (`DehydrationManager` fits). */
export interface RotationManager {
  fetchDevice(options?: { signal?: AbortSignal }): Promise<{ deviceId: string } | undefined>;
  createAndUpload(options?: {
    secretStorageKey?: SecretStorageKey;
    signal?: AbortSignal;
  }): Promise<{ deviceId: string }>;
  /** Re-reads the dehydration key from secret storage into the crypto store. */
  loadKey(options?: { secretStorageKey?: SecretStorageKey; signal?: AbortSignal }): Promise<boolean>;
}

/** What rotation needs of the drainer (`DehydratedDeviceDrainer` fits). */
export interface RotationDrainer {
  drain(options?: DrainCallOptions): Promise<DrainOutcome>;
}

/** What the rotation works with. */
export interface DehydratedDeviceRotationOptions {
  manager: RotationManager;
  drainer: RotationDrainer;
  stateStore: StateStore;
  userId: string;
  /** Drives the schedule; a `ManualClock` in tests. */
  clock?: Clock | undefined;
  logger?: Logger | undefined;
  /** Supplies the unlocked secret-storage key when one is needed; `undefined` to go without. */
  getSecretStorageKey?: (() => Promise<SecretStorageKey | undefined>) | undefined;
}

/** Options of `start()`. */
export interface RotationStartOptions {
  /**
   * Whether to drain (and then replace) a device this client has not seen before — the device
   * waiting for a new login. Default true. When false, such a device is adopted and drained only
   * when its interval has passed.
   */
  rehydrate?: boolean;
  /** How often to replace the device. Default 7 days. */
  rotateEveryMs?: number;
  /** Supplies the unlocked secret-storage key; overrides the one given to the constructor. */
  getSecretStorageKey?: () => Promise<SecretStorageKey | undefined>;
}

/** Why a device was uploaded: none on the server, a new login drained it, the interval passed, or on demand. */
export type ReplaceReason = "no_device" | "new_login" | "due" | "requested" | "forced";

/**
 * Codes of the plain `SdkError`s the rotation throws: `rotation_already_started` (`start()` twice),
 * `invalid_options` (a bad `rotateEveryMs`), `drain_incomplete` (`replaceNow()` refused to replace
 * a device whose drain was truncated), and `rotation_stopped`, the abort reason `stop()` gives.
 */
export type RotationErrorCode =
  | "rotation_already_started"
  | "invalid_options"
  | "drain_incomplete"
  | "rotation_stopped";

/** Background progress and failures of the rotation: events, never unhandled rejections. */
export interface RotationEvents {
  /** The next pass is due at `dueAtMs`. */
  scheduled: { deviceId: string | undefined; dueAtMs: number; reason: "interval" | "retry" };
  /** A new device is on the server; any previous one was drained first (unless `forced`). */
  replaced: { previousDeviceId: string | undefined; deviceId: string; reason: ReplaceReason };
  /** The server's device was taken as the current one: another client replaced it, or not draining. */
  adopted: { deviceId: string; reason: "replaced_elsewhere" | "not_rehydrating" };
  /** The device was not replaced because its drain did not complete; it stays on the server. */
  kept: { deviceId: string; reason: PaginationTruncationReason | "drain_failed" };
  /** A step failed; the pass is retried at `retryAtMs` (`undefined`: not retried). */
  failed: { stage: "check" | "drain" | "upload" | "key"; error: unknown; retryAtMs: number | undefined };
}

/** The result of one pass (the first one is what `start()` resolves to). */
export type RotationPassResult =
  | { action: "waited"; deviceId: string; dueAtMs: number }
  | { action: "adopted"; deviceId: string; dueAtMs: number }
  | { action: "replaced"; previousDeviceId: string | undefined; deviceId: string; dueAtMs: number }
  | { action: "kept"; deviceId: string; retryAtMs: number }
  | { action: "failed"; retryAtMs: number | undefined };

/**
 * Keeps one dehydrated device on the server and replaces it at most once per interval, never
 * before this client has drained it: a replacement deletes the old device with its inbox, and keys
 * sent while every client was closed exist only there.
 *
 * `start()` runs one pass at once and then one whenever the schedule says; each pass reads the
 * server's current device and follows `planRotationStep`. Failures are events and retried with
 * backoff; a failed or truncated drain keeps the device and never resets the key. `stop()`
 * cancels the schedule and whatever is in flight.
 */
export class DehydratedDeviceRotation {
  readonly events: TypedEmitter<RotationEvents>;
  readonly #options: DehydratedDeviceRotationOptions;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #records: RotationRecordStore;
  /** Passes and manual replacements run one at a time. */
  #queue: Promise<unknown> = Promise.resolve();
  #running: { controller: AbortController; loop: Promise<void> } | undefined;
  #rotateEveryMs = defaultRotateEveryMs;
  #getSecretStorageKey: (() => Promise<SecretStorageKey | undefined>) | undefined;
  #failures = 0;

  constructor(options: DehydratedDeviceRotationOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#logger = prefixedLogger(options.logger ?? silentLogger, "[dehydration rotation]");
    this.events = new TypedEmitter<RotationEvents>(this.#logger);
    this.#records = new RotationRecordStore(options.stateStore, options.userId);
    this.#getSecretStorageKey = options.getSecretStorageKey;
  }

  /** Whether `start()` was called and `stop()` was not. */
  get started(): boolean {
    return this.#running !== undefined;
  }

  /** What this client remembers: which device it last uploaded or adopted, and since when. */
  record(): Promise<RotationRecord | undefined> {
    return this.#records.load();
  }

  /**
   * Runs the first pass now and resolves with its result; later passes run on the clock until
   * `stop()`. Failures do not reject: they are `failed` events and a result with `retryAtMs`.
   */
  async start(options: RotationStartOptions = {}): Promise<RotationPassResult> {
    if (this.#running !== undefined) {
      throw new SdkError<RotationErrorCode>(
        "rotation_already_started",
        "the dehydrated-device rotation is already running",
      );
    }
    const rotateEveryMs = options.rotateEveryMs ?? defaultRotateEveryMs;
    if (!(Number.isFinite(rotateEveryMs) && rotateEveryMs > 0)) {
      throw new SdkError<RotationErrorCode>(
        "invalid_options",
        "rotateEveryMs must be a positive number of milliseconds",
      );
    }
    const settings = { rehydrate: options.rehydrate ?? true, rotateEveryMs };
    this.#rotateEveryMs = rotateEveryMs;
    if (options.getSecretStorageKey !== undefined) this.#getSecretStorageKey = options.getSecretStorageKey;
    const controller = new AbortController();
    let first!: (result: RotationPassResult) => void;
    const firstPass = new Promise<RotationPassResult>((resolve) => {
      first = resolve;
    });
    const loop = this.#loop(settings, controller.signal, first);
    this.#running = { controller, loop };
    return firstPass;
  }

  /**
   * Cancels the schedule and any pass in flight; resolves once the loop has exited and nothing
   * queued is left — a `replaceNow()` too (it stops with its own signal), so no upload reaches the
   * machine after this resolved.
   */
  async stop(): Promise<void> {
    const running = this.#running;
    if (running !== undefined) {
      this.#running = undefined;
      running.controller.abort(
        new SdkError<RotationErrorCode>("rotation_stopped", "the rotation was stopped"),
      );
      await running.loop;
    }
    await this.#queue;
  }

  /**
   * Drains the server's device and replaces it now, whatever the schedule. With `force`, replaces
   * it even when the drain failed or was truncated — the keys only that device holds are lost.
   * Rejects on failure (this is a call, not background work).
   */
  replaceNow(
    options: { force?: boolean; secretStorageKey?: SecretStorageKey; signal?: AbortSignal } = {},
  ): Promise<Extract<RotationPassResult, { action: "replaced" }>> {
    return this.#exclusive(async () => {
      const signal = options.signal;
      // Queued behind a pass, it may start after its caller (or the client) gave up.
      signal?.throwIfAborted();
      const key = options.secretStorageKey;
      const server = await this.#options.manager.fetchDevice({ ...(signal ? { signal } : {}) });
      if (server === undefined) return this.#upload(undefined, "no_device", signal, key);
      let drained = false;
      try {
        const outcome = await this.#options.drainer.drain(await this.#drainOptions(signal, key));
        drained = outcome.outcome === "completed" || outcome.outcome === "no_device";
        if (!drained && !options.force) {
          throw new SdkError<RotationErrorCode>(
            "drain_incomplete",
            "the device's drain was truncated; pass force to replace it anyway",
            {
              details: { deviceId: server.deviceId },
            },
          );
        }
      } catch (error) {
        if (!options.force || drained) throw error;
        // `force` gives up what the drain did not read, not the caller's abort: a stopped drain
        // must not go on to replace the device (nor reach a machine that is being closed).
        signal?.throwIfAborted();
        this.#logger.warn(`replacing ${server.deviceId} without a complete drain (forced)`);
      }
      return this.#upload(server.deviceId, drained ? "requested" : "forced", signal, key);
    });
  }

  /**
   * Records `deviceId` as uploaded here now, for a device uploaded outside the rotation (the
   * client's identity reset replaces the device itself): the next pass then waits a full interval
   * instead of taking it for another client's.
   */
  noteUploaded(deviceId: string): Promise<void> {
    return this.#exclusive(() =>
      this.#records.save({ deviceId, sinceMs: this.#clock.now(), uploadedHere: true }),
    );
  }

  async #loop(
    settings: { rehydrate: boolean; rotateEveryMs: number },
    signal: AbortSignal,
    first: (result: RotationPassResult) => void,
  ): Promise<void> {
    let isFirst = true;
    for (;;) {
      let result: RotationPassResult;
      try {
        result = await this.#exclusive(() => this.#pass(settings, signal));
      } catch (error) {
        // Only a stop gets here (a pass turns every other failure into a result).
        if (isFirst) first({ action: "failed", retryAtMs: undefined });
        if (!signal.aborted) this.#logger.error("rotation pass failed unexpectedly", errorSummary(error));
        return;
      }
      if (isFirst) first(result);
      isFirst = false;
      const nextAtMs = "dueAtMs" in result ? result.dueAtMs : result.retryAtMs;
      if (nextAtMs === undefined || signal.aborted) return;
      try {
        await this.#clock.sleep(Math.max(0, nextAtMs - this.#clock.now()), signal);
      } catch {
        return;
      }
    }
  }

  /** One look at the server and the step the plan asks for. Throws only when stopped. */
  async #pass(
    settings: { rehydrate: boolean; rotateEveryMs: number },
    signal: AbortSignal,
  ): Promise<RotationPassResult> {
    const { rotateEveryMs } = settings;
    let step: RotationStep;
    try {
      const [record, server] = await Promise.all([
        this.#records.load(),
        this.#options.manager.fetchDevice({ signal }),
      ]);
      step = planRotationStep({
        record,
        serverDeviceId: server?.deviceId,
        nowMs: this.#clock.now(),
        rotateEveryMs,
        rehydrate: settings.rehydrate,
      });
    } catch (error) {
      return this.#failed("check", error, signal, rotateEveryMs);
    }

    switch (step.kind) {
      case "wait":
        this.#scheduled(step.deviceId, step.dueAtMs, "interval");
        return { action: "waited", deviceId: step.deviceId, dueAtMs: step.dueAtMs };
      case "adopt":
        return this.#adopt(step.deviceId, step.reason, signal, rotateEveryMs);
      case "upload":
        return this.#uploadInPass(undefined, "no_device", signal, rotateEveryMs);
      case "drain-and-replace":
        return this.#drainAndReplace(step.deviceId, step.reason, signal, rotateEveryMs);
    }
  }

  async #drainAndReplace(
    deviceId: string,
    reason: "new_login" | "due",
    signal: AbortSignal,
    rotateEveryMs: number,
  ): Promise<RotationPassResult> {
    let outcome: DrainOutcome;
    try {
      outcome = await this.#options.drainer.drain(await this.#drainOptions(signal));
    } catch (error) {
      if (signal.aborted) throw error;
      const failed = this.#failed("drain", error, signal, rotateEveryMs);
      this.events.emit("kept", { deviceId, reason: "drain_failed" });
      return failed.action === "failed" && failed.retryAtMs !== undefined
        ? { action: "kept", deviceId, retryAtMs: failed.retryAtMs }
        : failed;
    }
    if (outcome.outcome === "truncated") {
      const retryAtMs = this.#clock.now() + rotationRetryDelayMs(++this.#failures, rotateEveryMs);
      this.#logger.warn(`not replacing ${outcome.deviceId}: its drain was truncated (${outcome.reason})`);
      this.events.emit("kept", { deviceId: outcome.deviceId, reason: outcome.reason });
      this.#scheduled(outcome.deviceId, retryAtMs, "retry");
      return { action: "kept", deviceId: outcome.deviceId, retryAtMs };
    }
    if (outcome.outcome === "no_device")
      return this.#uploadInPass(undefined, "no_device", signal, rotateEveryMs);

    // Drained to the end. The server's device may have changed meanwhile: replace only what we drained.
    let current: { deviceId: string } | undefined;
    try {
      current = await this.#options.manager.fetchDevice({ signal });
    } catch (error) {
      return this.#failed("check", error, signal, rotateEveryMs);
    }
    if (current !== undefined && current.deviceId !== outcome.deviceId) {
      return this.#adopt(current.deviceId, "replaced_elsewhere", signal, rotateEveryMs);
    }
    return this.#uploadInPass(
      current?.deviceId,
      current === undefined ? "no_device" : reason,
      signal,
      rotateEveryMs,
    );
  }

  async #adopt(
    deviceId: string,
    reason: "replaced_elsewhere" | "not_rehydrating",
    signal: AbortSignal,
    rotateEveryMs: number,
  ): Promise<RotationPassResult> {
    const nowMs = this.#clock.now();
    try {
      await this.#records.save({ deviceId, sinceMs: nowMs, uploadedHere: false });
    } catch (error) {
      return this.#failed("check", error, signal, rotateEveryMs);
    }
    if (reason === "replaced_elsewhere") await this.#rereadKey(signal);
    this.#failures = 0;
    this.#logger.info(`adopted ${deviceId} (${reason}); next rotation in ${rotateEveryMs} ms`);
    this.events.emit("adopted", { deviceId, reason });
    const dueAtMs = nowMs + rotateEveryMs;
    this.#scheduled(deviceId, dueAtMs, "interval");
    return { action: "adopted", deviceId, dueAtMs };
  }

  /** Another client may have made a new key with its device: read it so the next drain opens it. */
  async #rereadKey(signal: AbortSignal): Promise<void> {
    const secretStorageKey = await this.#secretStorageKey();
    try {
      await this.#options.manager.loadKey({ ...(secretStorageKey ? { secretStorageKey } : {}), signal });
    } catch (error) {
      if (signal.aborted) throw error;
      // Without the secret-storage key the next drain reads it instead (and says so if it fails).
      if (isDehydrationError(error) && error.code === "no_secret_storage_key") return;
      this.#logger.warn("could not re-read the dehydration key", errorSummary(error));
      this.events.emit("failed", { stage: "key", error, retryAtMs: undefined });
    }
  }

  async #uploadInPass(
    previousDeviceId: string | undefined,
    reason: ReplaceReason,
    signal: AbortSignal,
    rotateEveryMs: number,
  ): Promise<RotationPassResult> {
    try {
      const result = await this.#upload(previousDeviceId, reason, signal);
      this.#scheduled(result.deviceId, result.dueAtMs, "interval");
      return result;
    } catch (error) {
      return this.#failed("upload", error, signal, rotateEveryMs);
    }
  }

  async #upload(
    previousDeviceId: string | undefined,
    reason: ReplaceReason,
    signal: AbortSignal | undefined,
    key?: SecretStorageKey,
  ): Promise<Extract<RotationPassResult, { action: "replaced" }>> {
    // A device made after a stop would be made in a machine about to close, and never recorded.
    signal?.throwIfAborted();
    const secretStorageKey = key ?? (await this.#secretStorageKey());
    const { deviceId } = await this.#options.manager.createAndUpload({
      ...(secretStorageKey ? { secretStorageKey } : {}),
      ...(signal ? { signal } : {}),
    });
    const nowMs = this.#clock.now();
    await this.#records.save({ deviceId, sinceMs: nowMs, uploadedHere: true });
    this.#failures = 0;
    this.#logger.info(`replaced ${previousDeviceId ?? "(none)"} with ${deviceId} (${reason})`);
    this.events.emit("replaced", { previousDeviceId, deviceId, reason });
    return { action: "replaced", previousDeviceId, deviceId, dueAtMs: nowMs + this.#rotateEveryMs };
  }

  /** Reports a failed step and schedules a retry with backoff; a stop is passed through. */
  #failed(
    stage: "check" | "drain" | "upload",
    error: unknown,
    signal: AbortSignal,
    rotateEveryMs: number,
  ): Extract<RotationPassResult, { action: "failed" }> {
    if (signal.aborted) throw error;
    // A server without MSC3814 will not grow it by waiting.
    const permanent = isDehydrationError(error) && error.code === "unsupported";
    const retryAtMs = permanent
      ? undefined
      : this.#clock.now() + rotationRetryDelayMs(++this.#failures, rotateEveryMs);
    this.#logger.warn(
      `${stage} failed${retryAtMs === undefined ? "" : "; retrying later"}`,
      errorSummary(error),
    );
    this.events.emit("failed", { stage, error, retryAtMs });
    if (retryAtMs !== undefined) this.#scheduled(undefined, retryAtMs, "retry");
    return { action: "failed", retryAtMs };
  }

  #scheduled(deviceId: string | undefined, dueAtMs: number, reason: "interval" | "retry"): void {
    this.events.emit("scheduled", { deviceId, dueAtMs, reason });
  }

  async #drainOptions(signal: AbortSignal | undefined, key?: SecretStorageKey): Promise<DrainCallOptions> {
    const secretStorageKey = key ?? (await this.#secretStorageKey());
    return { ...(secretStorageKey ? { secretStorageKey } : {}), ...(signal ? { signal } : {}) };
  }

  async #secretStorageKey(): Promise<SecretStorageKey | undefined> {
    try {
      return await this.#getSecretStorageKey?.();
    } catch (error) {
      this.#logger.warn("getSecretStorageKey failed; going without", errorSummary(error));
      return undefined;
    }
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => {});
    return run;
  }
}
