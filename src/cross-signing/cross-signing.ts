import { DeviceLists, type OlmMachine, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import {
  bootstrapCrossSigning,
  type CrossSigningKeyStatus,
  getCrossSigningStatus,
  hasIdentity,
  signOwnDevice,
} from "../crypto/cross-signing.js";
import type { UiaCallback } from "../crypto/user-interactive-auth.js";
import type {
  DehydratedDeviceResetOutcome,
  IdentityResetHooks,
  PreResetDrain,
} from "../dehydration/identity-reset.js";
import { type WithErrorInfo, withErrorInfo } from "../errors/error-info.js";
import { SdkError } from "../errors/sdk-error.js";
import type { MatrixHttp } from "../http/types.js";
import {
  type CrossSigningKeyRole,
  restoreCrossSigningKeys,
  storeCrossSigningKeys,
} from "../secret-storage/cross-signing-secrets.js";
import { secretStorageKey } from "../secret-storage/key-holder.js";
import type {
  CreateSecretStorageKeyOptions,
  SecretStorage,
  SecretStorageKey,
} from "../secret-storage/secret-storage.js";

/**
 * Codes of the plain `SdkError`s cross-signing throws: `invalid_options` (contradictory options),
 * `cross_signing_identity_unknown` (restoring, but the account's identity is not known) and
 * `cross_signing_identity_exists` (bootstrapping would silently replace an identity) and
 * `secret_storage_key_exists` (creating a key would silently replace the account's default one).
 */
export type CrossSigningErrorCode =
  | "invalid_options"
  | "cross_signing_identity_unknown"
  | "cross_signing_identity_exists"
  | "secret_storage_key_exists";

/** Options of `client.crossSigning.bootstrap()`. */
export interface CrossSigningBootstrapOptions {
  /** Replace an existing identity (drops every verification others made of this user). */
  reset?: boolean;
  /** Overrides the client's `uiaCallback` for this call. */
  authCallback?: UiaCallback;
  /** Also store the private keys in secret storage under this key. */
  secretStorageKey?: SecretStorageKey;
  /**
   * Create a new default secret-storage key and store the private keys under it. Refused
   * (`secret_storage_key_exists`) when the account already has a default key — the user's
   * recovery key would stop opening anything — unless `reset` or `replaceSecretStorageKey`.
   */
  createSecretStorageKey?: true | CreateSecretStorageKeyOptions;
  /** Allow `createSecretStorageKey` to replace an existing default key. */
  replaceSecretStorageKey?: boolean;
  signal?: AbortSignal;
}

/** What `client.crossSigning.bootstrap()` did with secret storage and the dehydrated device. */
export interface CrossSigningBootstrapResult {
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
   * `stale` (also a `dehydration.stale` event; its `error` as plain `ErrorInfo`). `undefined`
   * without `reset`.
   */
  dehydratedDevice: WithErrorInfo<DehydratedDeviceResetOutcome> | undefined;
}

/** `bootstrap()` with `createSecretStorageKey`: the new key and its recovery key always exist. */
export interface CrossSigningBootstrapResultWithNewKey extends CrossSigningBootstrapResult {
  recoveryKey: string;
  secretStorageKey: SecretStorageKey;
}

/** Options of `restoreFromRecoveryKey` and `restoreFromPassphrase`. */
export interface RestoreFromRecoveryKeyOptions {
  /** The secret-storage key the recovery key or passphrase is for; default: the account's default key. */
  keyId?: string;
  signal?: AbortSignal;
}

/** What `restoreFromRecoveryKey` (or `restoreFromPassphrase`) restored. */
export interface RestoreFromRecoveryKeyResult {
  /** Private keys found in secret storage and imported. Empty when none were stored. */
  restored: CrossSigningKeyRole[];
  /** What the machine holds afterwards. */
  status: CrossSigningKeyStatus;
  /** Whether this device is now signed by the user's self-signing key (uploaded here if it was not). */
  deviceCrossSigned: boolean;
  /** The unlocked key, for reading further secrets and for `client.dehydration`. Prints only its id. */
  secretStorageKey: SecretStorageKey;
}

/** `client.crossSigning`: the account's cross-signing identity on this device. */
export interface CrossSigningApi {
  /** Which private cross-signing keys this device holds. */
  status(): Promise<CrossSigningKeyStatus>;
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
   * old device is kept and reported (`dehydratedDevice.outcome: "stale"`, `dehydration.stale`).
   * The drain reads the dehydration key with `secretStorageKey`, else the key cached here.
   */
  bootstrap(
    options: CrossSigningBootstrapOptions & { createSecretStorageKey: true | CreateSecretStorageKeyOptions },
  ): Promise<CrossSigningBootstrapResultWithNewKey>;
  bootstrap(options?: CrossSigningBootstrapOptions): Promise<CrossSigningBootstrapResult>;
  /**
   * A new login's way back to signing: unlocks secret storage with the recovery key, learns the
   * account's cross-signing identity from the server, imports the private keys, and signs this
   * device with the self-signing key if it is not signed yet. A wrong recovery key fails
   * (`SecretStorageError`) before anything is sent or imported.
   */
  restoreFromRecoveryKey(
    recoveryKey: string,
    options?: RestoreFromRecoveryKeyOptions,
  ): Promise<RestoreFromRecoveryKeyResult>;
  /**
   * `restoreFromRecoveryKey` for a user who chose a passphrase when the secret-storage key was
   * created (`createSecretStorageKey: { passphrase }`). A wrong passphrase is `SecretStorageError`
   * `bad_key` and a key made without one `no_passphrase`, both before anything is sent or imported;
   * neither error nor log repeats the passphrase.
   */
  restoreFromPassphrase(
    passphrase: string,
    options?: RestoreFromRecoveryKeyOptions,
  ): Promise<RestoreFromRecoveryKeyResult>;
}

/** What cross-signing is built from. */
export interface CrossSigningParts {
  machine: OlmMachine;
  http: MatrixHttp;
  userId: string;
  secretStorage: SecretStorage;
  /** Runs the machine's outgoing requests (device keys, own key query) to completion. */
  runOutgoingRequests: () => Promise<void>;
  uiaCallback?: UiaCallback | undefined;
  /** The dehydrated device's part in an identity reset (drain before, replace after). */
  identityReset?: IdentityResetHooks | undefined;
  /** The caller's signal joined with the owner's lifetime. */
  signal: (caller: AbortSignal | undefined) => AbortSignal;
  /** Throws once the owner is closed. */
  assertOpen: () => void;
}

/** The account's cross-signing identity: bootstrap (with the reset order) and restore. */
export class CrossSigning implements CrossSigningApi {
  readonly #parts: CrossSigningParts;

  constructor(parts: CrossSigningParts) {
    this.#parts = parts;
  }

  // Async so that a call after `close()` rejects, as every other call does, rather than throws.
  async status(): Promise<CrossSigningKeyStatus> {
    this.#parts.assertOpen();
    return getCrossSigningStatus(this.#parts.machine);
  }

  bootstrap(
    options: CrossSigningBootstrapOptions & { createSecretStorageKey: true | CreateSecretStorageKeyOptions },
  ): Promise<CrossSigningBootstrapResultWithNewKey>;
  bootstrap(options?: CrossSigningBootstrapOptions): Promise<CrossSigningBootstrapResult>;
  async bootstrap(options: CrossSigningBootstrapOptions = {}): Promise<CrossSigningBootstrapResult> {
    const parts = this.#parts;
    parts.assertOpen();
    if (options.secretStorageKey !== undefined && options.createSecretStorageKey !== undefined) {
      throw new SdkError<CrossSigningErrorCode>(
        "invalid_options",
        "pass either secretStorageKey or createSecretStorageKey, not both",
      );
    }
    const signal = parts.signal(options.signal);
    if (options.createSecretStorageKey !== undefined && !options.reset && !options.replaceSecretStorageKey) {
      const existing = await parts.secretStorage.getDefaultKeyId();
      if (existing !== undefined) {
        throw new SdkError<CrossSigningErrorCode>(
          "secret_storage_key_exists",
          "the account already has a default secret-storage key; unlock it (or pass replaceSecretStorageKey: true to make a new one, which the old recovery key will not open)",
          { details: { keyId: existing } },
        );
      }
    }
    // The machine's first pass publishes the device keys and fetches the account's own keys, so
    // an identity already on the server is known before deciding to make one.
    await parts.runOutgoingRequests();
    if (!options.reset) await this.#refuseSilentReplacement();
    // Before the identity changes: afterwards the dehydrated device no longer validates, and the
    // keys queued on it could only be given up.
    const drained =
      options.reset && parts.identityReset
        ? await parts.identityReset.beforeIdentityReset({
            secretStorageKey: options.secretStorageKey,
            signal,
          })
        : undefined;
    await bootstrapCrossSigning({
      machine: parts.machine,
      http: parts.http,
      authCallback: options.authCallback ?? parts.uiaCallback,
      reset: options.reset ?? false,
      signal,
    });
    await parts.runOutgoingRequests();
    await this.#requeryOwnKeys();

    // The identity is reset whether or not secret storage takes its keys: the dehydrated device
    // follows it either way (if storing failed, with the previous secret-storage key or the key
    // cached here — the new key is not the default then).
    let stored: Omit<CrossSigningBootstrapResult, "dehydratedDevice">;
    try {
      stored = await this.#storeKeys(options);
    } catch (error) {
      if (drained !== undefined) await this.#afterReset(drained, options.secretStorageKey, signal);
      throw error;
    }
    const dehydratedDevice =
      drained === undefined ? undefined : await this.#afterReset(drained, stored.secretStorageKey, signal);
    return {
      ...stored,
      dehydratedDevice: dehydratedDevice === undefined ? undefined : withErrorInfo(dehydratedDevice),
    };
  }

  restoreFromRecoveryKey(
    recoveryKey: string,
    options: RestoreFromRecoveryKeyOptions = {},
  ): Promise<RestoreFromRecoveryKeyResult> {
    return this.#restore(
      () => this.#parts.secretStorage.unlockWithRecoveryKey(recoveryKey, options.keyId),
      options,
    );
  }

  restoreFromPassphrase(
    passphrase: string,
    options: RestoreFromRecoveryKeyOptions = {},
  ): Promise<RestoreFromRecoveryKeyResult> {
    return this.#restore(
      () => this.#parts.secretStorage.unlockWithPassphrase(passphrase, options.keyId),
      options,
    );
  }

  /**
   * Both restores once the user's secret is turned into a key. `unlock` runs first and alone: a
   * wrong recovery key or passphrase fails there, before any request or import changes state.
   */
  async #restore(
    unlock: () => Promise<SecretStorageKey>,
    options: RestoreFromRecoveryKeyOptions,
  ): Promise<RestoreFromRecoveryKeyResult> {
    const parts = this.#parts;
    parts.assertOpen();
    const signal = parts.signal(options.signal);
    const key = await unlock();
    // crypto-wasm imports a private key only when it matches the public identity it knows, which
    // it learns from its own keys/query.
    await parts.runOutgoingRequests();
    if (!(await hasIdentity(parts.machine, parts.userId))) {
      throw new SdkError<CrossSigningErrorCode>(
        "cross_signing_identity_unknown",
        "the account's cross-signing identity is not known: the server has none, or the key query failed",
      );
    }
    const { found } = await restoreCrossSigningKeys(parts.machine, parts.secretStorage, key);
    // What the machine holds now, including keys it had before this call.
    const status = await getCrossSigningStatus(parts.machine);
    const deviceCrossSigned = await signOwnDevice(parts.machine, parts.http, signal);
    await parts.runOutgoingRequests();
    await this.#requeryOwnKeys();
    return { restored: found, status, deviceCrossSigned, secretStorageKey: key };
  }

  /**
   * The machine learns the signatures it just uploaded only from a key query of its own user;
   * until then it holds this device as not cross-signed, and the user's own messages decrypt
   * with a red shield (a sync would bring the change, but an app may bootstrap before syncing).
   * Marked changed as a sync's `device_lists.changed` would; an MSC4186 call with no counts
   * touches nothing else.
   */
  async #requeryOwnKeys(): Promise<void> {
    const { machine, userId } = this.#parts;
    const lists = new DeviceLists([new UserId(userId)]);
    try {
      await machine.receiveSyncChangesMsc4186("[]", lists, new Map());
    } finally {
      // Borrowed by the call (its `UserId`s are consumed by the constructor).
      lists.free();
    }
    await this.#parts.runOutgoingRequests();
  }

  async #storeKeys(
    options: CrossSigningBootstrapOptions,
  ): Promise<Omit<CrossSigningBootstrapResult, "dehydratedDevice">> {
    const { machine, secretStorage } = this.#parts;
    const create = options.createSecretStorageKey;
    if (create === undefined) {
      const key = options.secretStorageKey;
      const stored = key === undefined ? [] : await storeCrossSigningKeys(machine, secretStorage, key);
      return { recoveryKey: undefined, secretStorageKey: key, storedInSecretStorage: stored };
    }
    // The new key becomes the default only once the secrets are stored under it: if storing fails,
    // the account's default still names a key someone holds, the machine still holds the private
    // keys, and calling again stores them under a fresh key.
    const { setAsDefault = true, ...createOptions } = create === true ? {} : create;
    const created = await secretStorage.createKey({ ...createOptions, setAsDefault: false });
    const key = secretStorageKey(created.keyId, created.key);
    const stored = await storeCrossSigningKeys(machine, secretStorage, key);
    if (setAsDefault) await secretStorage.setDefaultKeyId(created.keyId);
    return { recoveryKey: created.recoveryKey, secretStorageKey: key, storedInSecretStorage: stored };
  }

  #afterReset(
    drained: PreResetDrain,
    key: SecretStorageKey | undefined,
    signal: AbortSignal,
  ): Promise<DehydratedDeviceResetOutcome> {
    // `drained` exists only when the hooks ran before the reset.
    const hooks = this.#parts.identityReset as IdentityResetHooks;
    return hooks.afterIdentityReset(drained, { secretStorageKey: key, signal });
  }

  async #refuseSilentReplacement(): Promise<void> {
    const { machine, userId } = this.#parts;
    const status = await getCrossSigningStatus(machine);
    if (status.hasMaster || !(await hasIdentity(machine, userId))) return;
    throw new SdkError<CrossSigningErrorCode>(
      "cross_signing_identity_exists",
      "the account already has a cross-signing identity this device holds no keys for; restore it from secret storage, or pass reset: true to replace it",
    );
  }
}
