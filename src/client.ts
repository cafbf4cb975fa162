import type { Device, OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import {
  bootstrapCrossSigning as bootstrapCrossSigningKeys,
  type CrossSigningKeyStatus,
  getCrossSigningStatus,
  uploadSignatures,
} from "./crypto/cross-signing.js";
import type { CryptoEvents } from "./crypto/crypto-events.js";
import { toDeviceId, toUserId } from "./crypto/identifiers.js";
import { type CryptoStoreOptions, createOlmMachine } from "./crypto/olm-machine.js";
import { OutgoingRequestLoop } from "./crypto/outgoing-requests.js";
import type { UiaCallback } from "./crypto/user-interactive-auth.js";
import { DehydrationManager } from "./dehydration/device/dehydration-manager.js";
import type { DrainTuning } from "./dehydration/drain/drain-loop.js";
import { DehydratedDeviceDrainer } from "./dehydration/drain/drainer.js";
import {
  type DehydratedDeviceResetOutcome,
  drainBeforeIdentityReset,
  type PreResetDrain,
  replaceAfterIdentityReset,
  type StaleDehydratedDeviceReason,
} from "./dehydration/identity-reset.js";
import { DehydratedDeviceRotation } from "./dehydration/rotation/rotation.js";
import { errorSummary } from "./errors/error-summary.js";
import { SdkError } from "./errors/sdk-error.js";
import { TypedEmitter } from "./events/emitter.js";
import {
  createMatrixHttp,
  type FetchLike,
  type MatrixHttpClient,
  type MatrixHttpEvents,
  type RefreshTokenCallback,
} from "./http/matrix-http.js";
import type { RetryConfig } from "./http/retry-policy.js";
import { type Logger, silentLogger } from "./logger.js";
import { createHttpAccountData } from "./secret-storage/account-data-http.js";
import {
  type CrossSigningKeyRole,
  restoreCrossSigningKeys,
  storeCrossSigningKeys,
} from "./secret-storage/cross-signing-secrets.js";
import {
  type AccountDataAccess,
  type CreateSecretStorageKeyOptions,
  SecretStorage,
  type SecretStorageKey,
} from "./secret-storage/secret-storage.js";
import { IndexedDbStateStore } from "./state/indexeddb-state-store.js";
import { MemoryStateStore } from "./state/memory-state-store.js";
import type { StateStore } from "./state/state-store.js";
import { type Clock, systemClock } from "./time/clock.js";

/** What `createE2eeClient` needs: the session, and the seams (fetch, clock, stores) an app may inject. */
export interface CreateE2eeClientOptions {
  /** Homeserver base URL, e.g. `https://matrix.example.org`. */
  baseUrl: string;
  /** The logged-in user and device; the access token must belong to them. */
  userId: string;
  deviceId: string;
  accessToken: string;
  fetch?: FetchLike;
  clock?: Clock;
  /** Uniform in [0, 1); drives backoff jitter. */
  random?: () => number;
  logger?: Logger;
  /** A machine the app already has (checked against `userId`/`deviceId`); the app keeps owning it. */
  olmMachine?: OlmMachine;
  /** Where a machine created here keeps its keys (IndexedDB); omit for an in-memory machine. */
  cryptoStore?: CryptoStoreOptions;
  /**
   * For feature modules' own state: drain checkpoints, the dehydrated-device rotation record. The
   * default follows the crypto store, so that state lives as long as the keys it describes: with
   * `cryptoStore`, an IndexedDB database named `${cryptoStore.name}-matrix-e2ee-devices-state`
   * (durability `cryptoStoreDurability`), opened here and closed by `close()`; without it (an
   * in-memory machine, or the app's own `olmMachine`), in memory. In memory, every start looks
   * like a new login to the rotation: it drains and replaces the dehydrated device each time.
   */
  stateStore?: StateStore;
  /**
   * How durable the crypto store is; drain checkpoints are never kept more durably than the room
   * keys they count. Default: `"durable"` with `cryptoStore` (IndexedDB), `"memory"` otherwise.
   */
  cryptoStoreDurability?: "memory" | "durable";
  /** Called on a soft logout to get a new access token (spec "Soft logout"). */
  refreshToken?: RefreshTokenCallback;
  /** Answers user-interactive auth, e.g. for uploading cross-signing keys. */
  uiaCallback?: UiaCallback;
  retry?: Partial<RetryConfig>;
  /** Where to fetch the crypto wasm from, for bundlers that move it. */
  wasmUrl?: URL | string;
  /** Tuning of the dehydrated-device modules the client builds. */
  dehydration?: {
    /**
     * How `dehydrationDrainer` paces every drain it runs — loop guards (`limits`), slice and page
     * sizes, pipelining — handed to it whole, so a field the drainer gains is settable here too.
     * Omit for its defaults, tuned for crypto-wasm in a UI thread; an app would set it to give a
     * slow device a longer time budget, or to cap the events one drain imports. A drain call's own
     * `limits` still override these.
     */
    drain?: DrainTuning;
  };
}

/**
 * Codes of the plain `SdkError`s the facade throws: `invalid_options` (contradictory or missing
 * options), `client_closed` (a call after `close()`; also the abort reason of requests it cancels),
 * `cross_signing_identity_unknown` (restoring, but the account's identity is not known) and
 * `cross_signing_identity_exists` (bootstrapping would silently replace an identity).
 */
export type ClientErrorCode =
  | "invalid_options"
  | "client_closed"
  | "cross_signing_identity_unknown"
  | "cross_signing_identity_exists";

/**
 * Everything the client reports: the transport's events, the crypto layer's, and its own. Payloads
 * never hold key material.
 */
export interface E2eeClientEvents extends MatrixHttpEvents, CryptoEvents {
  /**
   * An identity reset left the dehydrated device in place, signed by the old identity: senders
   * withhold room keys from it until it is replaced. Keys already queued on it are still there (see
   * `docs/dehydration.md`, "Resetting the identity"): retry `dehydrationDrainer.drain()` and then
   * call `dehydration.afterIdentityReset()`, or give them up with `dehydrationRotation.replaceNow({
   * force: true })`.
   */
  dehydratedDeviceStale: {
    deviceId: string | undefined;
    reason: StaleDehydratedDeviceReason;
    error: unknown;
  };
}

/** Options of `E2eeClient.bootstrapCrossSigning`. */
export interface ClientBootstrapCrossSigningOptions {
  /** Replace an existing identity (drops every verification others made of this user). */
  reset?: boolean;
  /** Overrides the client's `uiaCallback` for this call. */
  authCallback?: UiaCallback;
  /** Also store the private keys in secret storage under this key. */
  secretStorageKey?: SecretStorageKey;
  /** Create a new default secret-storage key and store the private keys under it. */
  createSecretStorageKey?: true | CreateSecretStorageKeyOptions;
  signal?: AbortSignal;
}

/** What `E2eeClient.bootstrapCrossSigning` did with secret storage. */
export interface ClientBootstrapCrossSigningResult {
  /**
   * The new key in recovery-key form, only when one was created. It is returned once and kept
   * nowhere: show it to the user; never log it.
   */
  recoveryKey: string | undefined;
  /** The key the private keys were stored under, if any (the caller's or the new one). */
  secretStorageKey: SecretStorageKey | undefined;
  /** Which private keys went into secret storage. */
  storedInSecretStorage: CrossSigningKeyRole[];
  /**
   * With `reset`: what became of the dehydrated device — drained and replaced, none, or left
   * `stale` (also a `dehydratedDeviceStale` event). `undefined` without `reset`.
   */
  dehydratedDevice: DehydratedDeviceResetOutcome | undefined;
}

/** Options of `E2eeClient.restoreFromRecoveryKey` and `E2eeClient.restoreFromPassphrase`. */
export interface RestoreFromRecoveryKeyOptions {
  /** The secret-storage key the recovery key or passphrase is for; default: the account's default key. */
  keyId?: string;
  signal?: AbortSignal;
}

/** What `E2eeClient.restoreFromRecoveryKey` (or `restoreFromPassphrase`) restored. */
export interface RestoreFromRecoveryKeyResult {
  /** Private keys found in secret storage and imported. Empty when none were stored. */
  restored: CrossSigningKeyRole[];
  /** What the machine holds afterwards. */
  status: CrossSigningKeyStatus;
  /** Whether this device is now signed by the user's self-signing key (uploaded here if it was not). */
  deviceCrossSigned: boolean;
  /** The unlocked key, for reading further secrets. */
  secretStorageKey: SecretStorageKey;
}

/**
 * What an app creates once per logged-in device: the transport, the crypto machine and its
 * request loop, secret storage, and the flows that need all of them. Wiring only; each protocol
 * rule lives in the module it names.
 */
export interface E2eeClient {
  readonly userId: string;
  readonly deviceId: string;
  readonly http: MatrixHttpClient;
  readonly machine: OlmMachine;
  readonly events: TypedEmitter<E2eeClientEvents>;
  readonly accountData: AccountDataAccess;
  readonly secretStorage: SecretStorage;
  readonly stateStore: StateStore;
  readonly outgoingRequests: OutgoingRequestLoop;
  /** The user's dehydrated device (MSC3814): support probe, key, upload, validation, rehydration. */
  readonly dehydration: DehydrationManager;
  /** Drains the dehydrated device's events into this login: pipelined, sliced, resumable. */
  readonly dehydrationDrainer: DehydratedDeviceDrainer;
  /** Replaces the dehydrated device only after draining it, at most once per interval. */
  readonly dehydrationRotation: DehydratedDeviceRotation;
  /** Sends what the machine wants sent; never rejects (failures are `requestFailed` events). */
  processOutgoingRequests(): Promise<void>;
  /**
   * Sets up cross-signing for the account and, when given or asked to create a secret-storage key,
   * stores the private keys there so another login can restore them.
   *
   * Refuses (`cross_signing_identity_exists`) when the account already has an identity whose
   * private keys this device lacks, unless `reset` is set: bootstrapping would silently replace
   * it. Restore it with `restoreFromRecoveryKey` or `restoreFromPassphrase` instead.
   *
   * With `reset`, the dehydrated device (MSC3814) is handled too, in the only order that loses no
   * key: drain it while it still validates, reset the identity, then replace it with a device
   * signed by the new identity. If the drain cannot complete, the identity is still reset but the
   * old device is kept and reported (`dehydratedDevice.outcome: "stale"`, `dehydratedDeviceStale`).
   * The drain reads the dehydration key with `secretStorageKey`, else the key cached here.
   */
  bootstrapCrossSigning(
    options?: ClientBootstrapCrossSigningOptions,
  ): Promise<ClientBootstrapCrossSigningResult>;
  /**
   * A new login's way back to signing: unlocks secret storage with the recovery key, learns the
   * account's cross-signing identity from the server, imports the private keys, and signs this
   * device with the self-signing key if it is not signed yet.
   */
  restoreFromRecoveryKey(
    recoveryKey: string,
    options?: RestoreFromRecoveryKeyOptions,
  ): Promise<RestoreFromRecoveryKeyResult>;
  /**
   * `restoreFromRecoveryKey` for a user who chose a passphrase when the secret-storage key was
   * created (`createSecretStorageKey: { passphrase }`): the key is derived from it with the key
   * description's `m.pbkdf2` parameters, so the app needs no recovery-key step of its own. A wrong
   * passphrase is `SecretStorageError` `bad_key` and a key made without one `no_passphrase`, both
   * before anything is sent or imported; neither error nor log repeats the passphrase.
   */
  restoreFromPassphrase(
    passphrase: string,
    options?: RestoreFromRecoveryKeyOptions,
  ): Promise<RestoreFromRecoveryKeyResult>;
  /**
   * Stops the loops, the rotation and any drain (it rejects with `DrainError` `aborted`, its
   * checkpoint kept), cancels requests in flight, and then closes the machine if it was created
   * here. Later drains reject at once with `aborted`.
   */
  close(): Promise<void>;
}

// Compile-time lists of every event the client forwards: adding an event to either source without
// forwarding it here is a type error.
const httpEventNames = [
  "requestRetried",
  "softLogout",
  "loggedOut",
  "tokenRefreshed",
  "tokenRefreshFailed",
] as const satisfies readonly (keyof MatrixHttpEvents)[];
const cryptoEventNames = [
  "requestSent",
  "requestFailed",
  "loopFailed",
  "retryScheduled",
] as const satisfies readonly (keyof CryptoEvents)[];
type Unlisted<All, Listed> = Exclude<All, Listed> extends never ? true : never;
const everyHttpEventForwarded: Unlisted<keyof MatrixHttpEvents, (typeof httpEventNames)[number]> = true;
const everyCryptoEventForwarded: Unlisted<keyof CryptoEvents, (typeof cryptoEventNames)[number]> = true;
void everyHttpEventForwarded;
void everyCryptoEventForwarded;

/**
 * Creates the client for one logged-in device: the transport, the `OlmMachine` (created here, or
 * the app's own checked against `userId`/`deviceId`), and the feature modules wired to both. No
 * request is sent until the app asks (`processOutgoingRequests`, a flow, or a module). Fails with
 * `invalid_options` on contradictory options, or the machine's typed error.
 */
export async function createE2eeClient(options: CreateE2eeClientOptions): Promise<E2eeClient> {
  if (options.olmMachine !== undefined && options.cryptoStore !== undefined) {
    throw new SdkError<ClientErrorCode>("invalid_options", "pass either olmMachine or cryptoStore, not both");
  }
  if (typeof options.accessToken !== "string" || options.accessToken === "") {
    throw new SdkError<ClientErrorCode>("invalid_options", "an access token is required");
  }
  const logger = options.logger ?? silentLogger;
  const http = createMatrixHttp({
    baseUrl: options.baseUrl,
    accessToken: options.accessToken,
    fetch: options.fetch,
    clock: options.clock,
    random: options.random,
    logger,
    retry: options.retry,
    refreshToken: options.refreshToken,
  });
  const machine = await createOlmMachine({
    userId: options.userId,
    deviceId: options.deviceId,
    store: options.cryptoStore,
    existingMachine: options.olmMachine,
    wasmUrl: options.wasmUrl,
    logger,
  });
  const durability = cryptoStoreDurability(options);
  let stateStore: StateStore;
  try {
    stateStore = await defaultStateStore(options, durability);
  } catch (error) {
    if (options.olmMachine === undefined) machine.close();
    throw error;
  }
  return new Client(options, { http, machine, logger, stateStore, durability });
}

/** The database the default state store of a client with `cryptoStore` lives in. */
export function defaultStateStoreName(cryptoStoreName: string): string {
  return `${cryptoStoreName}-matrix-e2ee-devices-state`;
}

function cryptoStoreDurability(options: CreateE2eeClientOptions): "memory" | "durable" {
  return options.cryptoStoreDurability ?? (options.cryptoStore ? "durable" : "memory");
}

/**
 * The app's store, else one as durable as the crypto store: the rotation record and drain
 * checkpoints describe what the crypto store holds, and must survive exactly when it does (a
 * rotation that forgets on reload replaces the device on every start).
 */
async function defaultStateStore(
  options: CreateE2eeClientOptions,
  durability: "memory" | "durable",
): Promise<StateStore> {
  if (options.stateStore !== undefined) return options.stateStore;
  if (options.cryptoStore === undefined) return new MemoryStateStore();
  return IndexedDbStateStore.open(defaultStateStoreName(options.cryptoStore.name), { durability });
}

class Client implements E2eeClient {
  readonly userId: string;
  readonly deviceId: string;
  readonly http: MatrixHttpClient;
  readonly machine: OlmMachine;
  readonly events: TypedEmitter<E2eeClientEvents>;
  readonly accountData: AccountDataAccess;
  readonly secretStorage: SecretStorage;
  readonly stateStore: StateStore;
  readonly outgoingRequests: OutgoingRequestLoop;
  readonly dehydration: DehydrationManager;
  readonly dehydrationDrainer: DehydratedDeviceDrainer;
  readonly dehydrationRotation: DehydratedDeviceRotation;
  readonly #ownsMachine: boolean;
  /** The default IndexedDB state store, opened by `createE2eeClient`: closed with the client. */
  readonly #ownedStateStore: IndexedDbStateStore | undefined;
  readonly #logger: Logger;
  readonly #uiaCallback: UiaCallback | undefined;
  readonly #closing = new AbortController();
  #closed: Promise<void> | undefined;

  constructor(
    options: CreateE2eeClientOptions,
    parts: {
      http: MatrixHttpClient;
      machine: OlmMachine;
      logger: Logger;
      stateStore: StateStore;
      durability: "memory" | "durable";
    },
  ) {
    const { http, machine, logger } = parts;
    this.userId = options.userId;
    this.deviceId = options.deviceId;
    this.http = http;
    this.machine = machine;
    this.#ownsMachine = options.olmMachine === undefined;
    this.#uiaCallback = options.uiaCallback;
    this.#logger = logger;
    this.stateStore = parts.stateStore;
    this.#ownedStateStore =
      options.stateStore === undefined && parts.stateStore instanceof IndexedDbStateStore
        ? parts.stateStore
        : undefined;
    this.events = new TypedEmitter<E2eeClientEvents>(logger);
    this.accountData = createHttpAccountData(http, options.userId, { signal: this.#closing.signal });
    this.secretStorage = new SecretStorage(this.accountData);
    this.outgoingRequests = new OutgoingRequestLoop({
      machine,
      http,
      clock: options.clock ?? systemClock,
      random: options.random,
      logger,
    });
    this.dehydration = new DehydrationManager({
      machine,
      http,
      outgoingRequests: this.outgoingRequests,
      secretStorage: this.secretStorage,
      logger,
    });
    this.dehydrationDrainer = new DehydratedDeviceDrainer({
      // Whole, and first: the client's own wiring below is not the app's to override.
      ...options.dehydration?.drain,
      rehydrator: this.dehydration,
      http,
      userId: options.userId,
      stateStore: this.stateStore,
      cryptoStoreDurability: parts.durability,
      clock: options.clock,
      logger,
      signal: this.#closing.signal,
    });
    this.dehydrationRotation = new DehydratedDeviceRotation({
      manager: this.dehydration,
      drainer: this.dehydrationDrainer,
      stateStore: this.stateStore,
      userId: options.userId,
      clock: options.clock,
      logger,
    });
    for (const name of httpEventNames) forward(http.events, this.events, name);
    for (const name of cryptoEventNames) forward(this.outgoingRequests.events, this.events, name);
  }

  processOutgoingRequests(): Promise<void> {
    return this.outgoingRequests.run();
  }

  async bootstrapCrossSigning(
    options: ClientBootstrapCrossSigningOptions = {},
  ): Promise<ClientBootstrapCrossSigningResult> {
    this.#assertOpen();
    if (options.secretStorageKey !== undefined && options.createSecretStorageKey !== undefined) {
      throw new SdkError<ClientErrorCode>(
        "invalid_options",
        "pass either secretStorageKey or createSecretStorageKey, not both",
      );
    }
    const signal = this.#signal(options.signal);
    // The machine's first pass publishes the device keys and fetches the account's own keys, so
    // an identity already on the server is known before deciding to make one.
    await this.outgoingRequests.run();
    if (!options.reset) await this.#refuseSilentReplacement();
    // Before the identity changes: afterwards the dehydrated device no longer validates, and the
    // keys queued on it could only be given up (see `dehydration/identity-reset.ts`).
    const drained = options.reset
      ? await drainBeforeIdentityReset({
          drainer: this.dehydrationDrainer,
          secretStorageKey: options.secretStorageKey,
          signal,
          logger: this.#logger,
        })
      : undefined;
    await bootstrapCrossSigningKeys({
      machine: this.machine,
      http: this.http,
      authCallback: options.authCallback ?? this.#uiaCallback,
      reset: options.reset ?? false,
      signal,
    });
    await this.outgoingRequests.run();

    // The identity is reset whether or not secret storage takes its keys: the dehydrated device
    // follows it either way (if storing failed, with the previous secret-storage key or the key
    // cached here — the new key is not the default then).
    let stored: Omit<ClientBootstrapCrossSigningResult, "dehydratedDevice">;
    try {
      stored = await this.#storeCrossSigningKeys(options);
    } catch (error) {
      if (drained !== undefined) await this.#afterIdentityReset(drained, options.secretStorageKey, signal);
      throw error;
    }
    const dehydratedDevice =
      drained === undefined
        ? undefined
        : await this.#afterIdentityReset(drained, stored.secretStorageKey, signal);
    return { ...stored, dehydratedDevice };
  }

  async #storeCrossSigningKeys(
    options: ClientBootstrapCrossSigningOptions,
  ): Promise<Omit<ClientBootstrapCrossSigningResult, "dehydratedDevice">> {
    const create = options.createSecretStorageKey;
    if (create === undefined) {
      const key = options.secretStorageKey;
      const stored =
        key === undefined ? [] : await storeCrossSigningKeys(this.machine, this.secretStorage, key);
      return { recoveryKey: undefined, secretStorageKey: key, storedInSecretStorage: stored };
    }
    // The new key becomes the default only once the secrets are stored under it: if storing fails,
    // the account's default still names a key someone holds, the machine still holds the private
    // keys, and calling again stores them under a fresh key.
    const { setAsDefault = true, ...createOptions } = create === true ? {} : create;
    const created = await this.secretStorage.createKey({ ...createOptions, setAsDefault: false });
    const key = { keyId: created.keyId, key: created.key };
    const stored = await storeCrossSigningKeys(this.machine, this.secretStorage, key);
    if (setAsDefault) await this.secretStorage.setDefaultKeyId(created.keyId);
    return { recoveryKey: created.recoveryKey, secretStorageKey: key, storedInSecretStorage: stored };
  }

  /** Step 3 of a reset: replace the drained device, or report it stale. Never throws. */
  async #afterIdentityReset(
    drained: PreResetDrain,
    secretStorageKey: SecretStorageKey | undefined,
    signal: AbortSignal,
  ): Promise<DehydratedDeviceResetOutcome> {
    const outcome = await replaceAfterIdentityReset(drained, {
      manager: this.dehydration,
      secretStorageKey,
      signal,
      logger: this.#logger,
    });
    if (outcome.outcome === "replaced") {
      // The rotation would otherwise take the new device for another client's.
      await this.dehydrationRotation.noteUploaded(outcome.deviceId).catch((error: unknown) => {
        this.#logger.warn("could not record the replaced dehydrated device", errorSummary(error));
      });
    } else if (outcome.outcome === "stale") {
      const { deviceId, reason, error } = outcome;
      this.events.emit("dehydratedDeviceStale", { deviceId, reason, error });
    }
    return outcome;
  }

  restoreFromRecoveryKey(
    recoveryKey: string,
    options: RestoreFromRecoveryKeyOptions = {},
  ): Promise<RestoreFromRecoveryKeyResult> {
    return this.#restore(() => this.secretStorage.unlockWithRecoveryKey(recoveryKey, options.keyId), options);
  }

  restoreFromPassphrase(
    passphrase: string,
    options: RestoreFromRecoveryKeyOptions = {},
  ): Promise<RestoreFromRecoveryKeyResult> {
    return this.#restore(() => this.secretStorage.unlockWithPassphrase(passphrase, options.keyId), options);
  }

  /**
   * Both restores once the user's secret is turned into a key. `unlock` runs first and alone: a
   * wrong recovery key or passphrase fails there, before any request or import changes state.
   */
  async #restore(
    unlock: () => Promise<SecretStorageKey>,
    options: RestoreFromRecoveryKeyOptions,
  ): Promise<RestoreFromRecoveryKeyResult> {
    this.#assertOpen();
    const signal = this.#signal(options.signal);
    const key = await unlock();
    // crypto-wasm imports a private key only when it matches the public identity it knows, which
    // it learns from its own keys/query.
    await this.outgoingRequests.run();
    if (!(await this.#hasOwnIdentity())) {
      throw new SdkError<ClientErrorCode>(
        "cross_signing_identity_unknown",
        "the account's cross-signing identity is not known: the server has none, or the key query failed",
      );
    }
    const { found } = await restoreCrossSigningKeys(this.machine, this.secretStorage, key);
    // What the machine holds now, including keys it had before this call.
    const status = await getCrossSigningStatus(this.machine);
    const deviceCrossSigned = await this.#signOwnDevice(status.hasSelfSigning, signal);
    await this.outgoingRequests.run();
    return { restored: found, status, deviceCrossSigned, secretStorageKey: key };
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      // Aborts every request and drain in flight at once; each part is then awaited until it has
      // let go of the machine (a drain the app started frees its rehydrated device first).
      this.#closing.abort(new SdkError<ClientErrorCode>("client_closed", "the client was closed"));
      await this.dehydrationRotation.stop();
      await this.dehydrationDrainer.stop();
      await this.outgoingRequests.stop();
      if (this.#ownsMachine) this.machine.close();
      await this.#ownedStateStore?.close();
    })();
    return this.#closed;
  }

  async #refuseSilentReplacement(): Promise<void> {
    const status = await getCrossSigningStatus(this.machine);
    if (status.hasMaster || !(await this.#hasOwnIdentity())) return;
    throw new SdkError<ClientErrorCode>(
      "cross_signing_identity_exists",
      "the account already has a cross-signing identity this device holds no keys for; restore it from secret storage, or pass reset: true to replace it",
    );
  }

  async #hasOwnIdentity(): Promise<boolean> {
    const userId = toUserId(this.userId);
    try {
      const identity = await this.machine.getIdentity(userId);
      identity?.free();
      return identity !== undefined;
    } finally {
      userId.free();
    }
  }

  /**
   * Signs this device with the self-signing key (Client-Server API, "Cross-signing") unless it is
   * signed already, so others see it as cross-signed by its owner. Returns whether it is signed.
   */
  async #signOwnDevice(canSign: boolean, signal: AbortSignal): Promise<boolean> {
    const userId = toUserId(this.userId);
    const deviceId = toDeviceId(this.deviceId);
    let device: Device | undefined;
    try {
      device = await this.machine.getDevice(userId, deviceId);
    } finally {
      userId.free();
      deviceId.free();
    }
    if (!device) return false;
    try {
      if (device.isCrossSignedByOwner()) return true;
      if (!canSign) return false;
      const request = await device.verify();
      try {
        await uploadSignatures(this.machine, this.http, request, signal);
      } finally {
        request.free();
      }
      return true;
    } finally {
      device.free();
    }
  }

  #signal(caller: AbortSignal | undefined): AbortSignal {
    return caller ? AbortSignal.any([caller, this.#closing.signal]) : this.#closing.signal;
  }

  #assertOpen(): void {
    if (this.#closed) throw new SdkError<ClientErrorCode>("client_closed", "the client was closed");
  }
}

function forward<
  Events extends { [K in keyof Events]: unknown },
  K extends keyof Events & keyof E2eeClientEvents,
>(source: TypedEmitter<Events>, target: TypedEmitter<E2eeClientEvents>, name: K): void {
  source.on(name, (payload) => target.emit(name, payload as E2eeClientEvents[K]));
}
