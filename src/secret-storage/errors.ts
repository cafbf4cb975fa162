import { errorGuard, SdkError } from "../errors/sdk-error.js";

/**
 * Why a secret-storage operation failed. Messages name the secret or key *id* at most, never key
 * material, recovery keys or passphrases.
 */
export type SecretStorageErrorCode =
  /** `m.secret_storage.default_key` is absent (or `{}`), and no key id was given. */
  | "no_default_key"
  /** No `m.secret_storage.key.<id>` description exists for the key id. */
  | "unknown_key"
  /** The key description names an algorithm other than `m.secret_storage.v1.aes-hmac-sha2`. */
  | "unsupported_algorithm"
  /** The key does not match the key check (iv/mac) in its description. */
  | "bad_key"
  /** The secret's MAC does not verify: wrong key, or tampered ciphertext. */
  | "bad_mac"
  /** Account data (or a decrypted secret) does not have the shape the spec requires. */
  | "malformed"
  /** The secret exists but is not encrypted for the key the caller holds. */
  | "not_stored"
  /** The key description carries no `passphrase` info, so a passphrase cannot derive it. */
  | "no_passphrase"
  /** The machine has no private cross-signing keys to export. */
  | "no_cross_signing_keys"
  /** The stored cross-signing keys are not those of the identity the machine knows (reset since?). */
  | "cross_signing_mismatch"
  /** The recovery key contains a character outside the base58 alphabet. */
  | "recovery_key_bad_base58"
  /** The recovery key does not start with the 0x8B 0x01 prefix. */
  | "recovery_key_bad_prefix"
  /** The recovery key's parity byte does not match (usually a typo). */
  | "recovery_key_bad_parity"
  /** The recovery key decodes to the wrong number of bytes. */
  | "recovery_key_bad_length";

/**
 * Codes of the plain `SdkError`s secret storage throws before it reads or writes any secret:
 * `webcrypto_unavailable` (no `globalThis.crypto.subtle` in this environment) and
 * `invalid_user_id` (account data needs the user id of the access token's owner).
 */
export type SecretStorageSetupErrorCode = "webcrypto_unavailable" | "invalid_user_id";

/** A secret-storage operation failed; `code` says why. */
export class SecretStorageError extends SdkError<SecretStorageErrorCode> {
  override name = "SecretStorageError";
}

/** Recognises a `SecretStorageError`, also one from another copy of this package. */
export const isSecretStorageError = errorGuard<SecretStorageError>("SecretStorageError");
