/** What every `SdkError` may carry besides its code and message. */
export interface SdkErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
}

/**
 * Base of every error this SDK throws. `code` is a stable machine-readable string in lowercase
 * snake_case (`client_closed`, `network_error`, `no_key`) — the type refuses anything else — and
 * is not the server's `errcode` (`M_NOT_FOUND`, on `MatrixApiError`); `message` is short and never
 * contains keys, recovery keys or access tokens; `details` carries structured context.
 *
 * Every code belongs to a typed union, so a misspelt code fails the type check: a family of errors
 * narrows `Code` to its own union (`class DehydrationError extends SdkError<DehydrationErrorCode>`)
 * and gets its constructor and `code` type from here; a plain `SdkError` names the union of the
 * module that throws it (`new SdkError<ClientErrorCode>("client_closed", …)`).
 */
export class SdkError<Code extends Lowercase<string> = Lowercase<string>> extends Error {
  override name = "SdkError";
  readonly code: Code;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: Code, message: string, options: SdkErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }
}

/** True for any error with a string `code`: ours, whatever its class. */
export function isSdkError(value: unknown): value is SdkError {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { code?: unknown }).code === "string" &&
    value instanceof Error
  );
}

/**
 * The type guard of one error class, by `name` rather than `instanceof`, so it also recognises an
 * error from a duplicate copy of this package (two bundles, an app and a library).
 */
export function errorGuard<E extends Error>(name: string): (value: unknown) => value is E {
  return (value: unknown): value is E => value instanceof Error && value.name === name;
}
