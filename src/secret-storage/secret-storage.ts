import {
  DEFAULT_KEY_EVENT_TYPE,
  isAesHmacSha2,
  keyEventType,
  parseAesPayload,
  parseDefaultKey,
  parseKeyDescription,
  parseSecretContent,
  type SecretStorageKeyDescription,
} from "./account-data-schemas.js";
import {
  AES_HMAC_SHA2_ALGORITHM,
  computeKeyCheck,
  decryptAesHmacSha2,
  encryptAesHmacSha2,
  verifyKeyCheck,
} from "./aes-hmac-sha2.js";
import { encodeUnpaddedBase64 } from "./base64.js";
import { SecretStorageError } from "./errors.js";
import { type SecretStorageKey, secretStorageKey, withHiddenKey } from "./key-holder.js";
import {
  DEFAULT_PASSPHRASE_ITERATIONS,
  deriveKeyFromPassphrase,
  type PassphraseInfo,
  PBKDF2_ALGORITHM,
  randomAlphanumeric,
} from "./passphrase.js";

export type { SecretStorageKey };

import { decodeRecoveryKey, encodeRecoveryKey, SECRET_STORAGE_KEY_LENGTH } from "./recovery-key.js";

/**
 * The user's global account data, as secret storage needs it. `get` resolves `undefined` when the
 * type has never been set (the server's 404 `M_NOT_FOUND`); content is untrusted and checked here.
 */
export interface AccountDataAccess {
  get(type: string): Promise<Record<string, unknown> | undefined>;
  set(type: string, content: Record<string, unknown>): Promise<void>;
}

/** Options of `SecretStorage.createKey`. */
export interface CreateSecretStorageKeyOptions {
  /** Make it `m.secret_storage.default_key`. Default `true`. */
  setAsDefault?: boolean;
  /** Human-readable `name` in the description. */
  name?: string;
  /** Derive the key from this passphrase (`m.pbkdf2`) instead of drawing it at random. */
  passphrase?: string;
  /** PBKDF2 iterations for `passphrase`; default 500,000. */
  passphraseIterations?: number;
}

/** A new key: its id and bytes, its recovery-key form and the description written to account data. */
export interface CreatedSecretStorageKey extends SecretStorageKey {
  /** The key in recovery-key form, for the user to write down. Never log it. */
  readonly recoveryKey: string;
  readonly description: SecretStorageKeyDescription;
}

/**
 * Server-side secret storage (Client-Server spec, "Secrets"): key descriptions, the default key, and
 * secrets encrypted with `m.secret_storage.v1.aes-hmac-sha2`, all kept in account data. Compatible
 * with matrix-js-sdk's `ServerSideSecretStorageImpl` in both directions.
 */
export class SecretStorage {
  readonly #accountData: AccountDataAccess;

  constructor(accountData: AccountDataAccess) {
    this.#accountData = accountData;
  }

  async getDefaultKeyId(): Promise<string | undefined> {
    return parseDefaultKey(await this.#accountData.get(DEFAULT_KEY_EVENT_TYPE));
  }

  /** `undefined` unsets the default, written as `{}` as matrix-js-sdk does (account data cannot be deleted). */
  async setDefaultKeyId(keyId: string | undefined): Promise<void> {
    await this.#accountData.set(DEFAULT_KEY_EVENT_TYPE, keyId === undefined ? {} : { key: keyId });
  }

  async getKeyDescription(keyId: string): Promise<SecretStorageKeyDescription | undefined> {
    const content = await this.#accountData.get(keyEventType(keyId));
    if (content === undefined || Object.keys(content).length === 0) return undefined;
    return parseKeyDescription(keyId, content);
  }

  /**
   * Creates a key (random 32 bytes, or PBKDF2 of a passphrase), writes its description with the key
   * check, and by default makes it the default key. The key id is 32 random alphanumerics, redrawn
   * if taken.
   */
  async createKey(options: CreateSecretStorageKeyOptions = {}): Promise<CreatedSecretStorageKey> {
    let key: Uint8Array<ArrayBuffer>;
    let passphrase: PassphraseInfo | undefined;
    if (options.passphrase !== undefined) {
      passphrase = {
        algorithm: PBKDF2_ALGORITHM,
        salt: randomAlphanumeric(32),
        iterations: options.passphraseIterations ?? DEFAULT_PASSPHRASE_ITERATIONS,
      };
      key = await deriveKeyFromPassphrase(options.passphrase, passphrase);
    } else {
      key = globalThis.crypto.getRandomValues(new Uint8Array(SECRET_STORAGE_KEY_LENGTH));
    }
    let keyId: string;
    do {
      keyId = randomAlphanumeric(32);
    } while ((await this.#accountData.get(keyEventType(keyId))) !== undefined);

    const keyCheck = await computeKeyCheck(key);
    const wire: Record<string, unknown> = { algorithm: AES_HMAC_SHA2_ALGORITHM, ...keyCheck };
    if (options.name !== undefined) wire.name = options.name;
    if (passphrase !== undefined) wire.passphrase = { ...passphrase };
    await this.#accountData.set(keyEventType(keyId), wire);
    if (options.setAsDefault ?? true) await this.setDefaultKeyId(keyId);

    const description: SecretStorageKeyDescription = { keyId, algorithm: AES_HMAC_SHA2_ALGORITHM, keyCheck };
    if (options.name !== undefined) description.name = options.name;
    if (passphrase !== undefined) description.passphrase = passphrase;
    return withHiddenKey(
      { keyId, key, recoveryKey: encodeRecoveryKey(key), description },
      "CreatedSecretStorageKey",
    );
  }

  /**
   * Whether `key` matches the description of `keyId` (default: the default key). A description
   * without a key check cannot refute any key, so it is `true` there, as in other clients; the
   * secret's own MAC still rejects a wrong key on `get`.
   */
  async checkKey(key: Uint8Array, keyId?: string): Promise<boolean> {
    const description = await this.#requireDescription(keyId);
    return description.keyCheck === undefined ? true : verifyKeyCheck(key, description.keyCheck);
  }

  /** Checks `key` against its description; `bad_key` when it does not match. */
  async unlock(key: Uint8Array, keyId?: string): Promise<SecretStorageKey> {
    const description = await this.#requireDescription(keyId);
    await this.#assertKeyMatches(key, description);
    return secretStorageKey(description.keyId, Uint8Array.from(key));
  }

  /** Decodes the recovery key (typed `recovery_key_*` errors), then `unlock`. */
  async unlockWithRecoveryKey(recoveryKey: string, keyId?: string): Promise<SecretStorageKey> {
    return this.unlock(decodeRecoveryKey(recoveryKey), keyId);
  }

  /** Derives the key with the description's `m.pbkdf2` parameters, then `unlock`. */
  async unlockWithPassphrase(passphrase: string, keyId?: string): Promise<SecretStorageKey> {
    const description = await this.#requireDescription(keyId);
    if (description.passphrase === undefined) {
      throw new SecretStorageError(
        "no_passphrase",
        `Key "${description.keyId}" has no passphrase parameters`,
        {
          details: { keyId: description.keyId },
        },
      );
    }
    const key = await deriveKeyFromPassphrase(passphrase, description.passphrase);
    await this.#assertKeyMatches(key, description);
    return secretStorageKey(description.keyId, key);
  }

  /**
   * Encrypts `secret` under each key and replaces the secret's account data, so encryptions under
   * keys not listed are dropped (they would hold an older value). Bytes are stored as their unpadded
   * base64 text, the convention for key-like secrets (cross-signing seeds, the dehydration key).
   * Each key is checked against its description first: a secret stored under a mistyped key could
   * never be read back.
   */
  async store(
    name: string,
    secret: string | Uint8Array,
    keys: SecretStorageKey | readonly SecretStorageKey[],
  ): Promise<void> {
    const list = Array.isArray(keys) ? keys : [keys as SecretStorageKey];
    if (list.length === 0) throw new RangeError("store() needs at least one key");
    const plaintext = typeof secret === "string" ? secret : encodeUnpaddedBase64(secret);
    const encrypted: Record<string, unknown> = {};
    for (const { keyId, key } of list) {
      const description = await this.#requireDescription(keyId);
      await this.#assertKeyMatches(key, description);
      encrypted[keyId] = await encryptAesHmacSha2(key, name, plaintext);
    }
    await this.#accountData.set(name, { encrypted });
  }

  /**
   * The secret's text, or `undefined` when no such secret exists (never set, or removed). A secret
   * that exists but is not encrypted for this key is `not_stored`; a wrong key or tampering is
   * `bad_mac`.
   */
  async get(name: string, key: SecretStorageKey): Promise<string | undefined> {
    const encrypted = parseSecretContent(name, await this.#accountData.get(name));
    if (encrypted === undefined) return undefined;
    const entry = encrypted[key.keyId];
    if (entry === undefined) {
      throw new SecretStorageError(
        "not_stored",
        `Secret "${name}" is not encrypted with key "${key.keyId}"`,
        {
          details: { secretName: name, keyId: key.keyId, storedKeyIds: Object.keys(encrypted) },
        },
      );
    }
    const plaintext = await decryptAesHmacSha2(key.key, name, parseAesPayload(name, key.keyId, entry));
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(plaintext);
    } catch (cause) {
      throw new SecretStorageError("malformed", `Secret "${name}" is not valid UTF-8 text`, {
        cause,
        details: { secretName: name },
      });
    }
  }

  /** Whether `name` holds an encryption for `keyId` (default: the default key; none → `false`). */
  async isStored(name: string, keyId?: string): Promise<boolean> {
    const id = keyId ?? (await this.getDefaultKeyId());
    if (id === undefined) return false;
    const encrypted = parseSecretContent(name, await this.#accountData.get(name));
    const entry = encrypted?.[id];
    if (entry === undefined) return false;
    parseAesPayload(name, id, entry);
    return true;
  }

  /** Forgets a secret: account data cannot be deleted, so it becomes `{}`, as other clients write. */
  async remove(name: string): Promise<void> {
    await this.#accountData.set(name, {});
  }

  async #requireDescription(keyId: string | undefined): Promise<SecretStorageKeyDescription> {
    const id = keyId ?? (await this.getDefaultKeyId());
    if (id === undefined) {
      throw new SecretStorageError("no_default_key", "No key id was given and there is no default key");
    }
    const description = await this.getKeyDescription(id);
    if (description === undefined) {
      throw new SecretStorageError("unknown_key", `Secret storage key "${id}" has no description`, {
        details: { keyId: id },
      });
    }
    if (!isAesHmacSha2(description)) {
      throw new SecretStorageError(
        "unsupported_algorithm",
        `Secret storage key "${id}" uses an unsupported algorithm`,
        { details: { keyId: id, algorithm: description.algorithm } },
      );
    }
    return description;
  }

  async #assertKeyMatches(key: Uint8Array, description: SecretStorageKeyDescription): Promise<void> {
    if (description.keyCheck !== undefined && !(await verifyKeyCheck(key, description.keyCheck))) {
      throw new SecretStorageError(
        "bad_key",
        `The key does not match secret storage key "${description.keyId}"`,
        {
          details: { keyId: description.keyId },
        },
      );
    }
  }
}
