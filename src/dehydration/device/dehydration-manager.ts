import { DehydratedDeviceKey, type OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import { getCrossSigningStatus } from "../../crypto/cross-signing.js";
import { toDeviceId } from "../../crypto/identifiers.js";
import type { KeyQueryLoop } from "../../crypto/refresh-device-lists.js";
import { TypedEmitter } from "../../events/emitter.js";
import type { MatrixHttp } from "../../http/types.js";
import { type Logger, prefixedLogger, silentLogger } from "../../logger.js";
import { decodeBase64 } from "../../secret-storage/base64.js";
import type { SecretStorage, SecretStorageKey } from "../../secret-storage/secret-storage.js";
import { readDehydrationKeys, sameKey } from "./dehydration-key.js";
import {
  type DehydratedDeviceLookup,
  deleteDehydratedDevice,
  fetchDehydratedDevice,
  putDehydratedDevice,
} from "./device-api.js";
import {
  collectDeviceFacts,
  readDeviceFacts,
  readOwnSelfSigningKey,
  refreshOwnKeys,
} from "./device-facts.js";
import {
  type DehydratedDeviceRejection,
  deviceRejectedError,
  validateDehydratedDevice,
} from "./device-validation.js";
import { DehydrationError } from "./errors.js";
import type { DehydrationEvents } from "./events.js";
import {
  type DehydrationKeyTexts,
  readDehydrationKeyTexts,
  writeDehydrationKey,
} from "./key-secret-storage.js";
import {
  DEFAULT_DEHYDRATED_DEVICE_DISPLAY_NAME,
  DEHYDRATION_ALGORITHMS,
  DEHYDRATION_KEY_LENGTH,
  DEHYDRATION_KEY_SECRET_NAMES,
} from "./names.js";
import { RehydratedDevice } from "./rehydrated-device.js";
import { assertSelfSigningKey, buildDehydratedDeviceUpload } from "./upload-request.js";
import type { DehydratedDeviceInfo } from "./wire-schemas.js";

/** What the dehydrated-device manager works with. */
export interface DehydrationManagerOptions {
  machine: OlmMachine;
  http: MatrixHttp;
  /**
   * The machine's outgoing-request loop (the client's `outgoingRequests`). Validation re-queries
   * our own keys through it: the machine batches its key queries, so there is no second path.
   */
  outgoingRequests: KeyQueryLoop;
  /** Where the dehydration key lives (account data of the machine's user). */
  secretStorage: SecretStorage;
  /**
   * Supplies the unlocked secret-storage key when an operation needs it and the call passed none
   * (e.g. by asking the user for their recovery key). Resolve `undefined` to go without: the key
   * cached in the crypto store is used then.
   */
  getSecretStorageKey?: () => Promise<SecretStorageKey | undefined>;
  /** `initial_device_display_name` of devices this manager uploads. Default "Dehydrated device". */
  displayName?: string;
  logger?: Logger;
}

/** Per-call options of the manager's operations. */
export interface DehydrationCallOptions {
  /** The unlocked secret-storage key; falls back to `getSecretStorageKey`. */
  secretStorageKey?: SecretStorageKey;
  signal?: AbortSignal;
}

/** Options of `rehydrate()`. */
export interface RehydrateOptions extends DehydrationCallOptions {
  /** Told the server's device id as soon as it is known, before validation (so a refusal can name it). */
  onDevice?: (deviceId: string) => void;
}

/** The server's device as this device judges it. */
export type DehydratedDeviceStatus =
  /** No device, or a server without MSC3814. */
  | { status: "none" }
  | { status: "valid"; deviceId: string }
  | {
      status: "invalid";
      deviceId: string;
      reasons: readonly DehydratedDeviceRejection[];
      /**
       * This manager uploaded (or accepted) the device under a self-signing key our identity no
       * longer has: the user reset their identity since. Only knowable for devices seen here.
       */
      signedByPreviousIdentity: boolean;
    };

/** What `afterIdentityReset` did with the server's device. */
export type IdentityResetOutcome = "none" | "kept" | "replaced" | "deleted";

/**
 * A user's dehydrated device (MSC3814): support probe, the key in secret
 * storage, create and upload, fetch, validate, rehydrate, delete, and the clean-up after an identity
 * reset. The head of the manager → device (`DehydratedDeviceInfo`) → `RehydratedDevice` chain; the
 * drain of a device's events builds on `rehydrate()`.
 */
export class DehydrationManager {
  readonly events: TypedEmitter<DehydrationEvents>;
  readonly #machine: OlmMachine;
  readonly #http: MatrixHttp;
  readonly #loop: KeyQueryLoop;
  readonly #storage: SecretStorage;
  readonly #getSecretStorageKey: (() => Promise<SecretStorageKey | undefined>) | undefined;
  readonly #displayName: string;
  readonly #logger: Logger;
  #supported: boolean | undefined;
  /** The device this manager uploaded or accepted, and the self-signing key that vouched for it. */
  #signedUnder: { deviceId: string; selfSigningKey: string } | undefined;

  constructor(options: DehydrationManagerOptions) {
    this.#machine = options.machine;
    this.#http = options.http;
    this.#loop = options.outgoingRequests;
    this.#storage = options.secretStorage;
    this.#getSecretStorageKey = options.getSecretStorageKey;
    this.#displayName = options.displayName ?? DEFAULT_DEHYDRATED_DEVICE_DISPLAY_NAME;
    this.#logger = prefixedLogger(options.logger ?? silentLogger, "[dehydration]");
    this.events = new TypedEmitter<DehydrationEvents>(this.#logger);
  }

  /**
   * Whether the server implements MSC3814, probed with `GET /dehydrated_device` (404
   * `M_UNRECOGNIZED` = no; 200 or 404 `M_NOT_FOUND` = yes). Cached for this client once answered;
   * a failed probe is not cached.
   */
  async isSupported(options: { signal?: AbortSignal } = {}): Promise<boolean> {
    if (this.#supported !== undefined) return this.#supported;
    return (await this.#lookup(options.signal)).status !== "unsupported";
  }

  /** The server's current device, unvalidated; `undefined` when there is none. */
  async fetchDevice(options: { signal?: AbortSignal } = {}): Promise<DehydratedDeviceInfo | undefined> {
    const lookup = await this.#lookup(options.signal);
    return lookup.status === "found" ? lookup.device : undefined;
  }

  /**
   * Reads the dehydration key from secret storage and caches it in the crypto store. `false` when
   * neither name holds a key. Throws `invalid_key` for a stored value that is not a 32-byte key.
   */
  async loadKey(options: DehydrationCallOptions = {}): Promise<boolean> {
    const storageKey = await this.#requireSecretStorageKey(options);
    const key = await this.#resolveKey(storageKey, { create: false, signal: options.signal });
    key?.fill(0);
    return key !== undefined;
  }

  /**
   * Makes a new random dehydration key, stores it under both secret names and caches it. The
   * server's current device can no longer be opened with it: call this only before uploading a new
   * device (and after draining the old one).
   */
  async resetKey(options: DehydrationCallOptions = {}): Promise<void> {
    const storageKey = await this.#requireSecretStorageKey(options);
    const key = globalThis.crypto.getRandomValues(new Uint8Array(DEHYDRATION_KEY_LENGTH));
    try {
      await writeDehydrationKey(this.#storage, key, storageKey);
      await this.#cache(key, "created");
    } finally {
      key.fill(0);
    }
  }

  /**
   * Creates a dehydrated device and uploads it in one PUT, replacing the server's current one.
   * The key comes from secret storage (created and stored under both names if absent); without a
   * secret-storage key, the cached key is used. Needs the private self-signing key.
   */
  async createAndUpload(
    options: DehydrationCallOptions & { displayName?: string } = {},
  ): Promise<{ deviceId: string }> {
    const { signal } = options;
    await assertSelfSigningKey(this.#machine);
    if (!(await this.isSupported({ signal }))) throw unsupported();
    const storageKey = await this.#secretStorageKey(options);
    const key =
      storageKey === undefined
        ? await this.#cachedKey()
        : await this.#resolveKey(storageKey, { create: true, signal });
    if (key === undefined) throw noKey();
    let deviceId: string;
    try {
      const body = await buildDehydratedDeviceUpload(
        this.#machine,
        key,
        options.displayName ?? this.#displayName,
      );
      deviceId = await putDehydratedDevice(this.#http, body, signal);
      if (deviceId !== body.device_id) {
        throw new DehydrationError(
          "device_id_mismatch",
          "The server acknowledged the dehydrated device under another id than the one uploaded",
          { details: { uploaded: body.device_id, acknowledged: deviceId } },
        );
      }
    } finally {
      key.fill(0);
    }
    this.#supported = true;
    const selfSigningKey = await readOwnSelfSigningKey(this.#machine);
    this.#signedUnder = selfSigningKey === undefined ? undefined : { deviceId, selfSigningKey };
    this.#logger.info(`uploaded dehydrated device ${deviceId}`);
    this.events.emit("uploaded", { deviceId });
    return { deviceId };
  }

  /**
   * Fetches the server's device and judges it (see `device-validation.ts`) after querying our own
   * keys through the machine. Emits `validationFailed` for a device it refuses.
   */
  async checkDevice(options: { signal?: AbortSignal } = {}): Promise<DehydratedDeviceStatus> {
    const lookup = await this.#lookup(options.signal);
    if (lookup.status !== "found") return { status: "none" };
    return this.#judge(lookup.device, options.signal);
  }

  /**
   * Opens the server's device for this login: fetch, validate, find the key, rehydrate.
   * `undefined` when there is no device. A device that fails validation is refused with
   * `device_rejected` and left on the server; `wrong_key` when no available key opens it.
   *
   * One exception, so that keys are not lost to an identity reset: the device this manager itself
   * validated or uploaded under our previous identity, failing nothing but the owner signature,
   * is opened (to be drained, then replaced). It is known only to this manager, in memory.
   */
  async rehydrate(options: RehydrateOptions = {}): Promise<RehydratedDevice | undefined> {
    const { signal } = options;
    // The lookup, our own key query and the secret reads do not depend on each other: they go out
    // together. The query and the secrets are settled, not thrown, until a device needs them, so a
    // server with no device answers `undefined` as before.
    const secrets = this.#secretStorageKey(options).then(async (storageKey) =>
      storageKey === undefined
        ? undefined
        : { storageKey, texts: await readDehydrationKeyTexts(this.#storage, storageKey) },
    );
    const [lookup, refreshed, read] = await Promise.all([
      this.#lookup(signal),
      settle(refreshOwnKeys(this.#machine, this.#loop, signal)),
      settle(secrets),
    ]);
    if (lookup.status !== "found") return undefined;
    const device = lookup.device;
    options.onDevice?.(device.deviceId);
    if (!(DEHYDRATION_ALGORITHMS as readonly string[]).includes(device.deviceData.algorithm)) {
      throw new DehydrationError(
        "unsupported_device_algorithm",
        `The dehydrated device uses an algorithm this SDK cannot rehydrate (${device.deviceData.algorithm})`,
        { details: { deviceId: device.deviceId, algorithm: device.deviceData.algorithm } },
      );
    }
    if (!refreshed.ok) throw refreshed.error;
    const status = await this.#judge(device, signal, { refreshed: true });
    if (status.status === "invalid") {
      if (status.reasons.includes("own_identity_not_trusted")) {
        throw crossSigningNotRestored(device.deviceId, status.reasons);
      }
      if (!signedOnlyByPreviousIdentity(status)) throw deviceRejectedError(device.deviceId, status.reasons);
      this.#logger.info(
        `opening ${device.deviceId}, validated here under our previous identity, to drain it`,
      );
    }

    if (!read.ok) throw read.error;
    // Secret storage is the truth; the cached key serves when it is out of reach or empty.
    const key =
      (read.value === undefined
        ? undefined
        : await this.#resolveKey(read.value.storageKey, {
            create: false,
            device,
            signal,
            texts: read.value.texts,
          })) ?? (await this.#cachedKey());
    if (key === undefined) throw noKey();
    try {
      const opened = await this.#open(key, device);
      if (opened === undefined) {
        throw new DehydrationError(
          "wrong_key",
          "The dehydration key does not open the server's dehydrated device (it was made with another key)",
          { details: { deviceId: device.deviceId } },
        );
      }
      this.#logger.info(`rehydrated device ${device.deviceId}`);
      return opened;
    } finally {
      key.fill(0);
    }
  }

  /**
   * Deletes the server's device. Resolves to its id, or `undefined` when there was none. The key
   * stays (in secret storage and the cache) for the next device.
   */
  async delete(options: { signal?: AbortSignal } = {}): Promise<string | undefined> {
    return this.#delete("requested", options.signal);
  }

  /**
   * Call after the user reset their cross-signing identity. The server's device is signed by the
   * old self-signing key, so every sender withholds room keys from it (MSC3814): it is replaced by
   * a device signed with the new key (`replace`, default, needs the private self-signing key),
   * otherwise deleted. A device that already validates under the current identity is kept.
   *
   * This does not drain the device: keys queued on it are lost unless drained first (the client's
   * `crossSigning.bootstrap({ reset: true })` drains before resetting; after a reset, this session's
   * drainer still opens the device it validated under the previous identity).
   */
  async afterIdentityReset(
    options: DehydrationCallOptions & { replace?: boolean } = {},
  ): Promise<IdentityResetOutcome> {
    const status = await this.checkDevice(options);
    if (status.status === "none") return "none";
    if (status.status === "valid") return "kept";
    if ((options.replace ?? true) && (await getCrossSigningStatus(this.#machine)).hasSelfSigning) {
      await this.createAndUpload(options);
      return "replaced";
    }
    await this.#delete("identity-reset", options.signal);
    return "deleted";
  }

  /**
   * Whether our identity changed since this manager uploaded or accepted the server's device (its
   * self-signing key is no longer ours). Cheap: no network. `false` when this manager has seen no
   * device; then `checkDevice()` tells whether the device validates at all.
   */
  async identityChangedSinceUpload(): Promise<boolean> {
    const seen = this.#signedUnder;
    if (seen === undefined) return false;
    const current = await readOwnSelfSigningKey(this.#machine);
    return current !== seen.selfSigningKey;
  }

  async #lookup(signal: AbortSignal | undefined): Promise<DehydratedDeviceLookup> {
    const lookup = await fetchDehydratedDevice(this.#http, signal);
    this.#supported = lookup.status !== "unsupported";
    return lookup;
  }

  async #judge(
    device: DehydratedDeviceInfo,
    signal: AbortSignal | undefined,
    options: { refreshed?: boolean } = {},
  ): Promise<DehydratedDeviceStatus> {
    const facts = options.refreshed
      ? await readDeviceFacts(this.#machine, device.deviceId)
      : await collectDeviceFacts(this.#machine, this.#loop, device.deviceId, signal);
    const verdict = validateDehydratedDevice(facts);
    const seen = this.#signedUnder;
    if (verdict.ok) {
      if (facts.selfSigningKey !== undefined) {
        this.#signedUnder = { deviceId: device.deviceId, selfSigningKey: facts.selfSigningKey };
      }
      return { status: "valid", deviceId: device.deviceId };
    }
    const signedByPreviousIdentity =
      seen !== undefined && seen.deviceId === device.deviceId && seen.selfSigningKey !== facts.selfSigningKey;
    this.#logger.warn(
      `refusing dehydrated device ${device.deviceId}: ${verdict.reasons.join(", ")}` +
        (signedByPreviousIdentity
          ? " (signed by our previous identity)"
          : verdict.reasons.includes("own_identity_not_trusted")
            ? "; this login does not trust our cross-signing identity yet (restore cross-signing first)"
            : "; the server may be injecting a device"),
    );
    this.events.emit("validationFailed", { deviceId: device.deviceId, reasons: verdict.reasons });
    return {
      status: "invalid",
      deviceId: device.deviceId,
      reasons: verdict.reasons,
      signedByPreviousIdentity,
    };
  }

  async #delete(reason: "requested" | "identity-reset", signal: AbortSignal | undefined) {
    const deviceId = await deleteDehydratedDevice(this.#http, signal);
    if (deviceId === undefined) return undefined;
    if (this.#signedUnder?.deviceId === deviceId) this.#signedUnder = undefined;
    this.#logger.info(`deleted dehydrated device ${deviceId}`);
    this.events.emit("deleted", { deviceId, reason });
    return deviceId;
  }

  /**
   * The key to use, from secret storage, cached in the crypto store. When the two names disagree,
   * the key that opens the server's current device wins; without a device to decide, the unstable
   * name's (Element writes only that one). The winner is then written under both names — unless
   * neither key opens an existing device and nothing is about to be uploaded, when rewriting would
   * only guess. With `create`, a missing key is made and stored.
   */
  async #resolveKey(
    storageKey: SecretStorageKey,
    purpose: {
      create: boolean;
      device?: DehydratedDeviceInfo;
      signal?: AbortSignal | undefined;
      /** The texts, when the caller read them already. */
      texts?: DehydrationKeyTexts;
    },
  ): Promise<Uint8Array | undefined> {
    const reading = readDehydrationKeys(
      purpose.texts ?? (await readDehydrationKeyTexts(this.#storage, storageKey)),
    );
    for (const { name, error } of reading.invalid) {
      this.#logger.warn(`ignoring "${name}": ${error.message}`);
    }
    const [first, second] = reading.candidates;
    if (first === undefined) {
      if (!purpose.create) return undefined;
      const key = globalThis.crypto.getRandomValues(new Uint8Array(DEHYDRATION_KEY_LENGTH));
      await writeDehydrationKey(this.#storage, key, storageKey);
      await this.#cache(key, "created");
      return key;
    }

    let chosen = first;
    let settled = second === undefined || purpose.create;
    if (second !== undefined) {
      const device =
        purpose.device ??
        (await this.#lookup(purpose.signal).then((l) => (l.status === "found" ? l.device : undefined)));
      for (const candidate of reading.candidates) {
        const opened = device === undefined ? undefined : await this.#open(candidate.key, device);
        if (opened !== undefined) {
          opened.free();
          chosen = candidate;
          settled = true;
          break;
        }
      }
      this.#logger.warn(
        `the dehydration key differs between "${first.names.join(", ")}" and "${second.names.join(", ")}"; ` +
          `using the one in "${chosen.names.join(", ")}"`,
      );
    }
    for (const other of reading.candidates) if (other !== chosen) other.key.fill(0);

    const stale = Object.values(DEHYDRATION_KEY_SECRET_NAMES).filter((n) => !chosen.names.includes(n));
    if (settled && stale.length > 0) await writeDehydrationKey(this.#storage, chosen.key, storageKey, stale);
    await this.#cache(chosen.key, "secret-storage");
    return chosen.key;
  }

  /** Stores the key in the crypto store unless it is there already; notices a changed key. */
  async #cache(key: Uint8Array, source: "secret-storage" | "created"): Promise<void> {
    const cached = await this.#cachedKey();
    const same = cached !== undefined && sameKey(cached, key);
    cached?.fill(0);
    if (same) return;
    const devices = this.#machine.dehydratedDevices();
    const wasmKey = DehydratedDeviceKey.createKeyFromArray(key);
    try {
      await devices.saveDehydratedDeviceKey(wasmKey);
    } finally {
      wasmKey.free();
      devices.free();
    }
    if (cached !== undefined && source === "secret-storage") {
      this.#logger.info("the dehydration key in secret storage changed (another client replaced it)");
      this.events.emit("keyChanged", { source });
    }
    this.events.emit("keyCached", { source });
  }

  async #cachedKey(): Promise<Uint8Array | undefined> {
    const devices = this.#machine.dehydratedDevices();
    try {
      const cached = await devices.getDehydratedDeviceKey();
      if (cached === undefined) return undefined;
      const bytes = decodeBase64(cached.toBase64());
      cached.free();
      return bytes;
    } finally {
      devices.free();
    }
  }

  /** The device opened with `key`, or `undefined` when the key does not decrypt it. */
  async #open(key: Uint8Array, device: DehydratedDeviceInfo): Promise<RehydratedDevice | undefined> {
    const devices = this.#machine.dehydratedDevices();
    const wasmKey = DehydratedDeviceKey.createKeyFromArray(key);
    const deviceId = toDeviceId(device.deviceId);
    try {
      const inner = await devices.rehydrate(wasmKey, deviceId, JSON.stringify(device.deviceData));
      return new RehydratedDevice(device.deviceId, inner);
    } catch (error) {
      // crypto-wasm says `aead::Error` for a wrong key; the message holds no key material.
      this.#logger.debug(
        `key does not open ${device.deviceId}: ${error instanceof Error ? error.message : error}`,
      );
      return undefined;
    } finally {
      deviceId.free();
      wasmKey.free();
      devices.free();
    }
  }

  async #secretStorageKey(options: DehydrationCallOptions): Promise<SecretStorageKey | undefined> {
    return options.secretStorageKey ?? (await this.#getSecretStorageKey?.());
  }

  async #requireSecretStorageKey(options: DehydrationCallOptions): Promise<SecretStorageKey> {
    const key = await this.#secretStorageKey(options);
    if (key === undefined) {
      throw new DehydrationError(
        "no_secret_storage_key",
        "This needs the secret-storage key (e.g. from the recovery key), and none was given",
      );
    }
    return key;
  }
}

/**
 * The device failed only the owner-signature rule, and only because our identity was reset after
 * this manager had validated that very device (same id, which is its Curve25519 key) under the
 * previous one. The room keys queued on it were sent to a device we trusted; a server cannot make
 * another device pass for it, since the id, the flag and the key checks still hold.
 */
function signedOnlyByPreviousIdentity(
  status: Extract<DehydratedDeviceStatus, { status: "invalid" }>,
): boolean {
  return (
    status.signedByPreviousIdentity &&
    status.reasons.every((reason) => reason === "not_cross_signed_by_owner")
  );
}

function unsupported(): DehydrationError {
  return new DehydrationError("unsupported", "The homeserver does not support dehydrated devices (MSC3814)");
}

function noKey(): DehydrationError {
  return new DehydrationError(
    "no_key",
    "No dehydration key: none is cached here, and none could be read from secret storage " +
      "(pass the secret-storage key, or store a key first)",
  );
}

function crossSigningNotRestored(
  deviceId: string,
  reasons: readonly DehydratedDeviceRejection[],
): DehydrationError {
  return new DehydrationError(
    "cross_signing_not_restored",
    `Cannot validate the dehydrated device ${deviceId}: this login does not trust the account's ` +
      "cross-signing identity yet. Restore cross-signing (restoreFromRecoveryKey or " +
      "restoreFromPassphrase) before rehydrating; the device was left in place",
    { details: { deviceId, reasons: [...reasons] } },
  );
}

/** A promise's outcome as a value, so that a failure waits until it matters. */
async function settle<T>(
  promise: Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}
