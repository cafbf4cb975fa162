import { errorGuard, SdkError } from "../errors/sdk-error.js";

/**
 * Why a drain of a dehydrated device stopped early. In every case the device stays on the server
 * and nothing was deleted (fetching never deletes, MSC3814), and the last checkpoint still points
 * after the last page whose room keys were stored, so the next drain resumes there.
 */
export type DrainErrorCode =
  /** A page could not be fetched, after the transport's retries (network, 5xx, 429, bad JSON). */
  | "fetch_failed"
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
