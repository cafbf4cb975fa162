import { SdkError } from "./sdk-error.js";

export type UserInteractiveAuthFailure =
  /** The server asked for authentication and the app supplied no callback. */
  | "no_callback"
  /** The app's callback returned no auth dict: the user (or app) gave up. */
  | "cancelled"
  /** The app's callback threw. */
  | "callback_failed"
  /** The server kept asking after the round limit. */
  | "too_many_rounds";

/**
 * User-interactive authentication (Client-Server API, "User-Interactive Authentication API") did not
 * complete. Carries the stages the server offered, never the auth dict (it may hold a password).
 */
export class UserInteractiveAuthError extends SdkError {
  override name = "UserInteractiveAuthError";
  readonly reason: UserInteractiveAuthFailure;

  constructor(
    reason: UserInteractiveAuthFailure,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(`UIA_${reason.toUpperCase()}`, message, options);
    this.reason = reason;
  }
}

export function isUserInteractiveAuthError(value: unknown): value is UserInteractiveAuthError {
  return value instanceof Error && value.name === "UserInteractiveAuthError";
}
