/** What every `SdkError` may carry besides its code and message. */
export interface SdkErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
}

/**
 * Base of every error this SDK throws. `code` is a stable machine-readable string; `message` is short
 * and never contains keys, recovery keys or access tokens; `details` carries structured context.
 * A family of errors narrows `Code` to its own union (`class DehydrationError extends
 * SdkError<DehydrationErrorCode>`) and gets its constructor and `code` type from here.
 */
export class SdkError<Code extends string = string> extends Error {
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
