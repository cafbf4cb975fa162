import { isAbortError } from "../../errors/abort-error.js";
import { errorGuard, SdkError } from "../../errors/sdk-error.js";
import { isSecretStorageError } from "../../secret-storage/errors.js";
import { isDehydrationError } from "../device/errors.js";

/**
 * Why a drain of a dehydrated device failed or stopped early. In every case the device stays on
 * the server and nothing was deleted (fetching never deletes, MSC3814), and the checkpoint is as
 * the last stored page left it, so the next drain resumes there. `cause` holds the underlying error.
 */
export type DrainErrorCode =
  /**
   * The device, our own keys or a page could not be fetched, after the transport's retries
   * (network, 5xx, 429, a malformed response): `cause` is the transport's error.
   */
  | "fetch_failed"
  /**
   * This login does not trust the account's cross-signing identity yet, so it cannot tell our
   * device from one the server made: restore cross-signing (`restoreFromRecoveryKey`) first.
   */
  | "cross_signing_not_restored"
  /** The server's device failed validation; a server may be injecting a device (`cause` has the reasons). */
  | "device_rejected"
  /**
   * No usable dehydration key: none in secret storage or the crypto store, no secret-storage key
   * given, a malformed stored key, a secret-storage failure, or a key that does not open the device.
   */
  | "key_unavailable"
  /** The device's `device_data` names an algorithm crypto-wasm cannot rehydrate. */
  | "unsupported_device_algorithm"
  /** The crypto layer failed on a slice of events. */
  | "import_failed"
  /** The checkpoint could not be written (the keys of that page are stored all the same). */
  | "checkpoint_failed"
  /** The server's device changed or went away during the drain (403 on its events). */
  | "device_gone"
  /** The caller aborted, or the client closed. */
  | "aborted";

export interface DrainErrorDetails {
  /** `undefined` when the drain was stopped before the server named its device. */
  deviceId: string | undefined;
  /** Where the next drain resumes: the cursor after the last stored page (undefined = the start). */
  cursor: string | undefined;
  pages: number;
  events: number;
  roomKeys: number;
}

/** A drain that stopped early; `code` says why, `details.cursor` where the next drain resumes. */
export class DrainError extends SdkError<DrainErrorCode> {
  override name = "DrainError";
  declare readonly details: Readonly<DrainErrorDetails & Record<string, unknown>>;

  constructor(
    code: DrainErrorCode,
    message: string,
    options: { cause?: unknown; details: DrainErrorDetails },
  ) {
    super(code, message, { cause: options.cause, details: { ...options.details } });
  }
}

/** Recognises a `DrainError`, also one from another copy of this package. */
export const isDrainError = errorGuard<DrainError>("DrainError");

const keyCodes = new Set(["no_key", "wrong_key", "invalid_key", "no_secret_storage_key"]);

/**
 * The one error a drain rejects with: a `DrainError` as it is, anything else wrapped with a code
 * that says what an app can do about it, and the original as `cause`.
 */
export function asDrainError(
  caught: unknown,
  signal: AbortSignal | undefined,
  details: DrainErrorDetails,
): DrainError {
  if (isDrainError(caught)) return caught;
  const wrap = (code: DrainErrorCode, message: string) =>
    new DrainError(code, message, { cause: caught, details });
  if (signal?.aborted || isAbortError(caught)) return wrap("aborted", "The drain was aborted");
  if (isDehydrationError(caught)) {
    if (caught.code === "cross_signing_not_restored")
      return wrap("cross_signing_not_restored", caught.message);
    if (caught.code === "device_rejected") return wrap("device_rejected", caught.message);
    if (caught.code === "unsupported_device_algorithm")
      return wrap("unsupported_device_algorithm", caught.message);
    if (keyCodes.has(caught.code)) return wrap("key_unavailable", caught.message);
  }
  if (isSecretStorageError(caught)) {
    return wrap("key_unavailable", "The dehydration key could not be read from secret storage");
  }
  return wrap("fetch_failed", "The dehydrated device could not be fetched or validated");
}
