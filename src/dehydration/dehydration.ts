import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import type { KeyQueryLoop } from "../crypto/refresh-device-lists.js";
import { errorSummary } from "../errors/error-summary.js";
import { TypedEmitter } from "../events/emitter.js";
import { forwardPrefixed, type Prefixed } from "../events/prefixed.js";
import type { MatrixHttp } from "../http/types.js";
import type { Logger } from "../logger.js";
import type { SecretStorage, SecretStorageKey } from "../secret-storage/secret-storage.js";
import type { StateStore } from "../state/state-store.js";
import type { Clock } from "../time/clock.js";
import { type DehydratedDeviceStatus, DehydrationManager } from "./device/dehydration-manager.js";
import type { DehydrationEvents } from "./device/events.js";
import type { DrainTuning } from "./drain/drain-loop.js";
import { DehydratedDeviceDrainer, type DrainOutcome } from "./drain/drainer.js";
import type { DrainEvents } from "./drain/events.js";
import type { PaginationLimits } from "./drain/pagination.js";
import {
  type DehydratedDeviceResetOutcome,
  drainBeforeIdentityReset,
  type IdentityResetHooks,
  type PreResetDrain,
  replaceAfterIdentityReset,
  type StaleDehydratedDeviceReason,
} from "./identity-reset.js";
import {
  DehydratedDeviceRotation,
  type RotationEvents,
  type RotationPassResult,
} from "./rotation/rotation.js";
import type { RotationRecord } from "./rotation/rotation-plan.js";

/** Events of the dehydrated-device capability that are its own, beside its parts'. */
export interface DehydratedDeviceStaleEvents {
  /**
   * An identity reset left the dehydrated device in place, signed by the old identity: senders
   * withhold room keys from it until it is replaced. Keys already queued on it are still there:
   * `replaceNow()` drains them and replaces it (this session still opens the device it validated
   * under the previous identity); `replaceNow({ force: true })` gives them up.
   */
  stale: { deviceId: string | undefined; reason: StaleDehydratedDeviceReason; error?: unknown };
}

/**
 * Everything the dehydrated-device capability reports, named by part: `dehydration.*` (the
 * device: uploaded, deleted, key cached or changed, validation failed, stale after a reset),
 * `dehydration.drain.*` (found, rehydrated, page, completed, truncated, error) and
 * `dehydration.rotation.*` (scheduled, replaced, adopted, kept, failed). Payloads hold ids,
 * cursors, counts and reasons, never key material.
 */
export type DehydrationModuleEvents = Prefixed<
  "dehydration",
  DehydrationEvents & DehydratedDeviceStaleEvents
> &
  Prefixed<"dehydration.drain", DrainEvents> &
  Prefixed<"dehydration.rotation", RotationEvents>;

/** The key to read or write the dehydration key with; else the client's `getSecretStorageKey`, else the cached key. */
export interface DehydrationKeyOptions {
  secretStorageKey?: SecretStorageKey | undefined;
  signal?: AbortSignal | undefined;
}

/** Options of `client.dehydration.drain()`. */
export interface DrainOptions extends DehydrationKeyOptions {
  /** Ignore any checkpoint and start from the first page (re-importing is harmless, only slower). */
  restart?: boolean | undefined;
  /** Overrides the client's drain limits (`dehydration.drain.limits`) for this call. */
  limits?: Partial<PaginationLimits> | undefined;
}

/** Options of `client.dehydration.start()`. */
export interface RotationOptions {
  /**
   * Whether to drain (and then replace) a device this client has not seen before — the device
   * waiting for a new login. Default true. When false, such a device is adopted and drained only
   * when its interval has passed.
   */
  rehydrate?: boolean | undefined;
  /** How often to replace the device. Default 7 days. */
  rotateEveryMs?: number | undefined;
  /**
   * The key the rotation reads and writes the dehydration key with, for as long as it runs; else
   * it asks the client's `getSecretStorageKey` at each pass.
   */
  secretStorageKey?: SecretStorageKey | undefined;
}

/** Options of `client.dehydration.replaceNow()`. */
export interface ReplaceNowOptions extends DehydrationKeyOptions {
  /** Replace even when the drain failed or was truncated: the keys only that device holds are lost. */
  force?: boolean | undefined;
}

/** Where the dehydrated device stands, as `status()` reports it. */
export interface DehydrationStatus {
  /** The server's device as this client judges it. */
  device: DehydratedDeviceStatus;
  rotation: {
    /** Whether `start()` was called and `stop()` was not. */
    running: boolean;
    /** Which device this client last uploaded or adopted, and since when. */
    record: RotationRecord | undefined;
  };
}

/** `client.dehydration`: the user's dehydrated device (MSC3814). */
export interface DehydrationApi {
  /** Whether the server implements MSC3814 (probed once, then cached). */
  isSupported(options?: { signal?: AbortSignal }): Promise<boolean>;
  /** The server's device (validated) and the rotation's state. */
  status(options?: { signal?: AbortSignal }): Promise<DehydrationStatus>;
  /**
   * Rehydrates the server's device and drains its to-device inbox into this login's crypto store.
   * A call while a drain runs joins it. Rejects only with `DrainError`.
   */
  drain(options?: DrainOptions): Promise<DrainOutcome>;
  /**
   * Keeps a dehydrated device on the server, replacing it at most once per interval and never
   * before it is drained. Resolves with the first pass's result; later passes run on the clock
   * until `stop()` or `client.close()`. Failures are `dehydration.rotation.failed` events.
   */
  start(options?: RotationOptions): Promise<RotationPassResult>;
  /** Stops the rotation and whatever it has in flight; resolves once it has. */
  stop(): Promise<void>;
  /**
   * Drains the server's device and replaces it now. Rejects with `drain_incomplete` when the drain
   * was truncated (the device is kept), unless `force`.
   */
  replaceNow(options?: ReplaceNowOptions): Promise<Extract<RotationPassResult, { action: "replaced" }>>;
  /** Deletes the server's device; resolves to its id, `undefined` when there was none. The key stays. */
  delete(options?: { signal?: AbortSignal }): Promise<string | undefined>;
}

/** What the dehydrated-device capability is built from. */
export interface DehydrationParts {
  machine: OlmMachine;
  http: MatrixHttp;
  outgoingRequests: KeyQueryLoop;
  secretStorage: SecretStorage;
  stateStore: StateStore;
  cryptoStoreDurability: "memory" | "durable";
  userId: string;
  /** The app's key source, asked when a call passes no `secretStorageKey`. */
  getSecretStorageKey?: (() => Promise<SecretStorageKey | undefined>) | undefined;
  tuning?: DrainTuning | undefined;
  clock?: Clock | undefined;
  logger: Logger;
  /** The owner's lifetime: aborts every drain once it fires. */
  signal: AbortSignal;
  /** Throws once the owner is closed: every call checks first, so none touches a closed machine. */
  assertOpen: () => void;
  /** Where every event goes, already named by part (`dehydration.drain.page`, …). */
  emit: (event: string, payload: unknown) => void;
}

/** The parts behind `client.dehydration`, for this SDK's own tests and tools; not public API. */
export interface DehydrationInternals {
  manager: DehydrationManager;
  drainer: DehydratedDeviceDrainer;
  rotation: DehydratedDeviceRotation;
}

/** Reads the parts of a `Dehydration`; assigned by the class's static block. */
export let dehydrationInternals: (dehydration: Dehydration) => DehydrationInternals;

/**
 * The dehydrated-device capability: one object over the device manager (probe, key, upload,
 * validate, rehydrate), the drainer and the rotation, with one event stream for all three.
 */
export class Dehydration implements DehydrationApi, IdentityResetHooks {
  readonly #manager: DehydrationManager;
  readonly #drainer: DehydratedDeviceDrainer;
  readonly #rotation: DehydratedDeviceRotation;
  readonly #events: TypedEmitter<DehydratedDeviceStaleEvents>;
  readonly #getSecretStorageKey: (() => Promise<SecretStorageKey | undefined>) | undefined;
  readonly #logger: Logger;
  readonly #assertOpen: () => void;
  /** The owner's lifetime: every call's requests stop when it fires. */
  readonly #signal: AbortSignal;
  /** The key `start()` was given, for the rotation's passes. */
  #rotationKey: SecretStorageKey | undefined;

  static {
    dehydrationInternals = (d) => ({ manager: d.#manager, drainer: d.#drainer, rotation: d.#rotation });
  }

  constructor(parts: DehydrationParts) {
    const { logger } = parts;
    this.#logger = logger;
    this.#assertOpen = parts.assertOpen;
    this.#signal = parts.signal;
    this.#getSecretStorageKey = parts.getSecretStorageKey;
    this.#manager = new DehydrationManager({
      machine: parts.machine,
      http: parts.http,
      outgoingRequests: parts.outgoingRequests,
      secretStorage: parts.secretStorage,
      getSecretStorageKey: parts.getSecretStorageKey,
      logger,
    });
    this.#drainer = new DehydratedDeviceDrainer({
      // Whole, and first: the wiring below is not the app's to override.
      ...parts.tuning,
      rehydrator: this.#manager,
      http: parts.http,
      userId: parts.userId,
      stateStore: parts.stateStore,
      cryptoStoreDurability: parts.cryptoStoreDurability,
      clock: parts.clock,
      logger,
      signal: parts.signal,
    });
    this.#rotation = new DehydratedDeviceRotation({
      manager: this.#manager,
      drainer: this.#drainer,
      stateStore: parts.stateStore,
      userId: parts.userId,
      clock: parts.clock,
      logger,
      getSecretStorageKey: () => this.#rotationSecretStorageKey(),
    });
    this.#events = new TypedEmitter<DehydratedDeviceStaleEvents>(logger);
    forwardPrefixed(this.#manager.events, "dehydration", parts.emit);
    forwardPrefixed(this.#events, "dehydration", parts.emit);
    forwardPrefixed(this.#drainer.events, "dehydration.drain", parts.emit);
    forwardPrefixed(this.#rotation.events, "dehydration.rotation", parts.emit);
  }

  async isSupported(options: { signal?: AbortSignal } = {}): Promise<boolean> {
    this.#assertOpen();
    return this.#manager.isSupported({ signal: this.#callSignal(options.signal) });
  }

  async status(options: { signal?: AbortSignal } = {}): Promise<DehydrationStatus> {
    this.#assertOpen();
    const [device, record] = await Promise.all([
      this.#manager.checkDevice({ signal: this.#callSignal(options.signal) }),
      this.#rotation.record(),
    ]);
    return { device, rotation: { running: this.#rotation.started, record } };
  }

  async drain(options: DrainOptions = {}): Promise<DrainOutcome> {
    this.#assertOpen();
    return this.#drainer.drain(options);
  }

  async start(options: RotationOptions = {}): Promise<RotationPassResult> {
    this.#assertOpen();
    const { secretStorageKey, ...rest } = options;
    const wasRunning = this.#rotation.started;
    const started = this.#rotation.start(rest);
    // Only when this call started it: a second `start()` rejects and keeps the first call's key.
    if (!wasRunning && this.#rotation.started) this.#rotationKey = secretStorageKey;
    return await started;
  }

  async stop(): Promise<void> {
    await this.#rotation.stop();
    this.#rotationKey = undefined;
  }

  async replaceNow(
    options: ReplaceNowOptions = {},
  ): Promise<Extract<RotationPassResult, { action: "replaced" }>> {
    this.#assertOpen();
    return this.#rotation.replaceNow({ ...options, signal: this.#callSignal(options.signal) });
  }

  async delete(options: { signal?: AbortSignal } = {}): Promise<string | undefined> {
    this.#assertOpen();
    return this.#manager.delete({ signal: this.#callSignal(options.signal) });
  }

  /** Before the identity changes: drains the device while it still validates. */
  beforeIdentityReset(options: DehydrationKeyOptions & { signal: AbortSignal }): Promise<PreResetDrain> {
    return drainBeforeIdentityReset({
      drainer: this.#drainer,
      secretStorageKey: options.secretStorageKey,
      signal: options.signal,
      logger: this.#logger,
    });
  }

  /** After the identity changed: replaces the drained device, or reports it stale. Never throws. */
  async afterIdentityReset(
    drained: PreResetDrain,
    options: DehydrationKeyOptions & { signal: AbortSignal },
  ): Promise<DehydratedDeviceResetOutcome> {
    const outcome = await replaceAfterIdentityReset(drained, {
      manager: this.#manager,
      secretStorageKey: options.secretStorageKey,
      signal: options.signal,
      logger: this.#logger,
    });
    if (outcome.outcome === "replaced") {
      // The rotation would otherwise take the new device for another client's.
      await this.#rotation.noteUploaded(outcome.deviceId).catch((error: unknown) => {
        this.#logger.warn("could not record the replaced dehydrated device", errorSummary(error));
      });
    } else if (outcome.outcome === "stale") {
      const { deviceId, reason, error } = outcome;
      this.#events.emit("stale", { deviceId, reason, error });
    }
    return outcome;
  }

  /**
   * Stops the rotation, a `replaceNow()` in flight and the drain in flight (the owner's signal has
   * fired, so their requests are cancelled); each lets go of the machine before this resolves.
   */
  async close(): Promise<void> {
    await this.#rotation.stop();
    await this.#drainer.stop();
  }

  /** The caller's signal joined with the owner's: a call in flight when the client closes stops too. */
  #callSignal(caller: AbortSignal | undefined): AbortSignal {
    return caller === undefined ? this.#signal : AbortSignal.any([caller, this.#signal]);
  }

  async #rotationSecretStorageKey(): Promise<SecretStorageKey | undefined> {
    return this.#rotationKey ?? (await this.#getSecretStorageKey?.());
  }
}
