import { errorGuard, SdkError, type SdkErrorOptions } from "./sdk-error.js";

/** Why user-interactive auth did not complete (the error's `reason`). */
export type UserInteractiveAuthFailure =
  /** The server asked for authentication and the app supplied no callback. */
  | "no_callback"
  /** The app's callback returned no auth dict: the user (or app) gave up. */
  | "cancelled"
  /** The app's callback threw. */
  | "callback_failed"
  /** The server kept asking after the round limit. */
  | "too_many_rounds"
  /**
   * The server refused an attempt (its `errcode`, e.g. `M_FORBIDDEN` for a wrong password, is in
   * `details`) and the callback answered with the very same auth dict: sending it again could only
   * fail again, and repeated wrong passwords trip servers' rate limits.
   */
  | "rejected";

/** The error's `code`: its `reason` behind a `uia_` prefix, e.g. `uia_cancelled`. */
export type UserInteractiveAuthErrorCode = `uia_${UserInteractiveAuthFailure}`;

/**
 * User-interactive authentication (Client-Server API, "User-Interactive Authentication API") did not
 * complete. Carries the stages the server offered, never the auth dict (it may hold a password).
 */
export class UserInteractiveAuthError extends SdkError<UserInteractiveAuthErrorCode> {
  override name = "UserInteractiveAuthError";
  readonly reason: UserInteractiveAuthFailure;

  constructor(reason: UserInteractiveAuthFailure, message: string, options: SdkErrorOptions = {}) {
    super(`uia_${reason}`, message, options);
    this.reason = reason;
  }
}

/** User-interactive auth that did not complete. */
export const isUserInteractiveAuthError = errorGuard<UserInteractiveAuthError>("UserInteractiveAuthError");
