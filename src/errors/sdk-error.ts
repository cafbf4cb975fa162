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

/**
 * The `name` of every error class this SDK throws. Matching by name, like the class guards, keeps
 * working across two copies of the package; matching on "an `Error` with a string `code`" would
 * also take Node's `ENOENT` or a fetch library's own errors for ours.
 */
const SDK_ERROR_NAMES: ReadonlySet<string> = new Set([
  "SdkError",
  "AbortError",
  "DehydrationError",
  "DrainError",
  "MalformedResponseError",
  "MatrixApiError",
  "NetworkError",
  "RoomError",
  "SecretStorageError",
  "StateStoreError",
  "TimeoutError",
  "UserInteractiveAuthError",
]);

/** True for an error this SDK threw (any of its classes), and for nothing else. */
export function isSdkError(value: unknown): value is SdkError {
  return (
    value instanceof Error &&
    SDK_ERROR_NAMES.has(value.name) &&
    typeof (value as { code?: unknown }).code === "string"
  );
}

/**
 * The type guard of one error class, by `name` rather than `instanceof`, so it also recognises an
 * error from a duplicate copy of this package (two bundles, an app and a library).
 */
export function errorGuard<E extends Error>(name: string): (value: unknown) => value is E {
  return (value: unknown): value is E => value instanceof Error && value.name === name;
}
