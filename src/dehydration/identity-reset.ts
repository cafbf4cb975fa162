import { errorSummary } from "../errors/error-summary.js";
import type { TypedEmitter } from "../events/emitter.js";
import { type Logger, silentLogger } from "../logger.js";
import type { SecretStorageKey } from "../secret-storage/secret-storage.js";
import type { DrainCallOptions, DrainOutcome } from "./drain/drainer.js";
import { isDrainError } from "./drain/errors.js";
import type { DrainEvents } from "./drain/events.js";

/**
 * The dehydrated device across a cross-signing identity reset (MSC3814).
 *
 * The device is signed by the old self-signing key, so after the reset every sender withholds room
 * keys from it, and this SDK's own validation refuses it as not cross-signed by its owner. Keys
 * already queued on it are readable only by opening it with the dehydration key. The safe order is
 * therefore: **drain** it while it still validates, **reset** the identity, **replace** it with a
 * device signed by the new key. Replacing deletes the old device with its inbox, so it happens only
 * after a complete drain of that very device. When the drain cannot complete the identity is still
 * reset (the user asked for it), but the old device is left in place and reported *stale*: the app
 * decides between `replaceNow()`, which drains it again (the manager still opens the device it
 * validated under the previous identity, in this session) and replaces it only once drained, and
 * `replaceNow({ force: true })`, which gives up what the drain could not read.
 */

/** Why the dehydrated device was left in place, signed by the old identity. */
export type StaleDehydratedDeviceReason =
  /** The server's pagination misbehaved (a loop guard fired); the checkpoint is kept. */
  | "drain_truncated"
  /** Fetching or importing failed (network, server, crypto store), or the server's device could not be read. */
  | "drain_failed"
  /** No dehydration key here opens it (none cached and no secret-storage key given, or another key). */
  | "cannot_open"
  /** It failed validation before the reset: not provably ours, so not touched. */
  | "rejected"
  /** Another client replaced the device between the drain and the replacement. */
  | "device_changed"
  /** Drained, but uploading the replacement failed. */
  | "replace_failed";

/** What became of the dehydrated device when the identity was reset. */
export type DehydratedDeviceResetOutcome =
  /** The server had none (or does not implement MSC3814): nothing to do. */
  | { outcome: "none" }
  /** Drained to its end, then replaced by a device signed with the new identity. */
  | { outcome: "replaced"; previousDeviceId: string; deviceId: string }
  /** Left on the server, signed by the old identity: senders withhold from it until it is replaced. */
  | {
      outcome: "stale";
      /** `undefined` when the server's device could not be read at all. */
      deviceId: string | undefined;
      reason: StaleDehydratedDeviceReason;
      /** What failed; absent when nothing threw (a truncated drain, a changed device). */
      error?: unknown;
    };

/** Where the device stands after the drain that precedes the reset. */
export type PreResetDrain =
  | { kind: "none" }
  | { kind: "drained"; deviceId: string }
  | {
      kind: "not_drained";
      deviceId: string | undefined;
      reason: StaleDehydratedDeviceReason;
      /** What failed; absent when nothing threw (a truncated drain, a changed device). */
      error?: unknown;
    };

/** What the drain before a reset uses (`DehydratedDeviceDrainer` fits). */
export interface PreResetDrainer {
  drain(options?: DrainCallOptions): Promise<DrainOutcome>;
  /** `found` names the device once it is open; a failure names it in `DrainError.details`. */
  readonly events: Pick<TypedEmitter<DrainEvents>, "on">;
}

/** What the replacement after a reset uses (`DehydrationManager` fits). */
export interface PostResetManager {
  fetchDevice(options?: { signal?: AbortSignal }): Promise<{ deviceId: string } | undefined>;
  createAndUpload(options?: {
    secretStorageKey?: SecretStorageKey;
    signal?: AbortSignal;
  }): Promise<{ deviceId: string }>;
}

/**
 * What a cross-signing identity reset needs of the dehydrated device, around the reset itself:
 * `beforeIdentityReset` (step 1) and `afterIdentityReset` (step 3, with the drain's result).
 */
export interface IdentityResetHooks {
  beforeIdentityReset(options: {
    secretStorageKey?: SecretStorageKey | undefined;
    signal: AbortSignal;
  }): Promise<PreResetDrain>;
  afterIdentityReset(
    drained: PreResetDrain,
    options: { secretStorageKey?: SecretStorageKey | undefined; signal: AbortSignal },
  ): Promise<DehydratedDeviceResetOutcome>;
}

/**
 * Step 1, before the identity changes: drains the server's device to its end. Never throws for a
 * drain that could not complete — that is a value, `not_drained` — except when `signal` aborts:
 * then nothing has changed yet and the reset must not go ahead either.
 */
export async function drainBeforeIdentityReset(options: {
  drainer: PreResetDrainer;
  secretStorageKey?: SecretStorageKey | undefined;
  signal: AbortSignal;
  logger?: Logger | undefined;
}): Promise<PreResetDrain> {
  const { signal } = options;
  const logger = options.logger ?? silentLogger;
  let outcome: DrainOutcome;
  let found: string | undefined;
  const off = options.drainer.events.on("found", ({ deviceId }) => {
    found = deviceId;
  });
  try {
    outcome = await options.drainer.drain({
      ...(options.secretStorageKey === undefined ? {} : { secretStorageKey: options.secretStorageKey }),
      signal,
    });
  } catch (error) {
    if (signal.aborted || (isDrainError(error) && error.code === "aborted")) throw error;
    const stale = classify(error, found);
    logger.warn(
      `could not drain the dehydrated device before the identity reset (${stale.reason})`,
      errorSummary(error),
    );
    return { kind: "not_drained", ...stale, error };
  } finally {
    off();
  }
  if (outcome.outcome === "no_device") return { kind: "none" };
  if (outcome.outcome === "truncated") {
    logger.warn(
      `the drain of ${outcome.deviceId} before the identity reset was truncated (${outcome.reason})`,
    );
    return { kind: "not_drained", deviceId: outcome.deviceId, reason: "drain_truncated", error: undefined };
  }
  return { kind: "drained", deviceId: outcome.deviceId };
}

/**
 * Step 3, once the new identity is in place: replaces the device drained in step 1 — and only that
 * one — with a device signed by the new self-signing key. Never throws: a failure is a `stale`
 * outcome, as the reset itself has happened.
 */
export async function replaceAfterIdentityReset(
  before: PreResetDrain,
  options: {
    manager: PostResetManager;
    /** The secret-storage key the dehydration key is (to be) stored under; else the cached key. */
    secretStorageKey?: SecretStorageKey | undefined;
    signal: AbortSignal;
    logger?: Logger | undefined;
  },
): Promise<DehydratedDeviceResetOutcome> {
  if (before.kind === "none") return { outcome: "none" };
  if (before.kind === "not_drained") {
    const { deviceId, reason, error } = before;
    return { outcome: "stale", deviceId, reason, error };
  }
  const logger = options.logger ?? silentLogger;
  const { signal } = options;
  const previousDeviceId = before.deviceId;
  try {
    const current = await options.manager.fetchDevice({ signal });
    // Someone deleted it: nothing is left to replace, and nothing was lost by us.
    if (current === undefined) return { outcome: "none" };
    if (current.deviceId !== previousDeviceId) {
      logger.warn(`not replacing ${current.deviceId}: it is not the device drained before the reset`);
      return { outcome: "stale", deviceId: current.deviceId, reason: "device_changed", error: undefined };
    }
    const { deviceId } = await options.manager.createAndUpload({
      ...(options.secretStorageKey === undefined ? {} : { secretStorageKey: options.secretStorageKey }),
      signal,
    });
    logger.info(`replaced ${previousDeviceId} with ${deviceId} after the identity reset`);
    return { outcome: "replaced", previousDeviceId, deviceId };
  } catch (error) {
    logger.warn("could not replace the dehydrated device after the identity reset", errorSummary(error));
    return { outcome: "stale", deviceId: previousDeviceId, reason: "replace_failed", error };
  }
}

function classify(
  error: unknown,
  found: string | undefined,
): { deviceId: string | undefined; reason: StaleDehydratedDeviceReason } {
  const details = (error as { details?: { deviceId?: unknown } } | undefined)?.details;
  const deviceId = typeof details?.deviceId === "string" ? details.deviceId : found;
  if (isDrainError(error)) {
    if (error.code === "device_rejected" || error.code === "cross_signing_not_restored") {
      return { deviceId, reason: "rejected" };
    }
    if (error.code === "key_unavailable" || error.code === "unsupported_device_algorithm") {
      return { deviceId, reason: "cannot_open" };
    }
  }
  return { deviceId, reason: "drain_failed" };
}
