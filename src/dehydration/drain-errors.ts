import { SdkError } from "../errors/sdk-error.js";

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
  deviceId: string;
  /** Where the next drain resumes: the cursor after the last stored page (undefined = the start). */
  cursor: string | undefined;
  pages: number;
  events: number;
  roomKeys: number;
}

export class DrainError extends SdkError {
  override name = "DrainError";
  declare readonly code: DrainErrorCode;
  declare readonly details: Readonly<DrainErrorDetails & Record<string, unknown>>;

  constructor(
    code: DrainErrorCode,
    message: string,
    options: { cause?: unknown; details: DrainErrorDetails },
  ) {
    super(code, message, { cause: options.cause, details: { ...options.details } });
  }
}

/** Checks `name`, not `instanceof`, so it works across realms and duplicate package copies. */
export function isDrainError(value: unknown): value is DrainError {
  return value instanceof Error && value.name === "DrainError";
}
