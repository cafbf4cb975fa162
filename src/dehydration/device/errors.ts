import { errorGuard, SdkError } from "../../errors/sdk-error.js";

/**
 * Why a dehydrated-device operation failed. Messages and details name secrets, device ids and
 * reasons, never key material.
 */
export type DehydrationErrorCode =
  /** The server does not implement MSC3814 (404 `M_UNRECOGNIZED` on its endpoints). */
  | "unsupported"
  /** A stored dehydration key is not the unpadded base64 of exactly 32 bytes. */
  | "invalid_key"
  /** No dehydration key in secret storage nor in the crypto store, and none may be created here. */
  | "no_key"
  /** The operation reads or writes secret storage, but no secret-storage key was given. */
  | "no_secret_storage_key"
  /** Creating a device needs the private self-signing key (restore it from secret storage first). */
  | "missing_self_signing_key"
  /**
   * The server's device failed validation (not ours, not flagged dehydrated, id not its key, not
   * cross-signed by our identity). A server may be injecting a device; nothing was deleted.
   */
  | "device_rejected"
  /**
   * This login does not trust the account's cross-signing identity (not verified, private keys
   * not held here), so no device can be judged ours: restore cross-signing first.
   */
  | "cross_signing_not_restored"
  /** The device's `device_data` names an algorithm crypto-wasm cannot rehydrate. */
  | "unsupported_device_algorithm"
  /** No available key decrypts the device's `device_data` (the key was changed, or it is foreign). */
  | "wrong_key"
  /** crypto-wasm produced an upload body that does not have MSC3814's shape. */
  | "malformed_upload"
  /** The display name is longer than servers accept. */
  | "invalid_display_name"
  /** The server acknowledged the upload with another device id than the one sent. */
  | "device_id_mismatch";

/** A dehydrated-device operation failed; `code` says why. */
export class DehydrationError extends SdkError<DehydrationErrorCode> {
  override name = "DehydrationError";
}

/** Recognises a `DehydrationError`, also one from another copy of this package. */
export const isDehydrationError = errorGuard<DehydrationError>("DehydrationError");
