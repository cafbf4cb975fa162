import { SdkError } from "./sdk-error.js";

/**
 * The caller's AbortSignal fired. Named `AbortError` like the DOM's, so the usual
 * `err.name === "AbortError"` checks keep working; the signal's reason is the `cause`.
 */
export class AbortError extends SdkError<"aborted"> {
  override name = "AbortError";

  constructor(what: string, options: { cause?: unknown } = {}) {
    super("aborted", `${what} was aborted`, { cause: options.cause });
  }
}

/** True for our AbortError and for a DOM `AbortError` DOMException alike. */
export function isAbortError(value: unknown): value is Error {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { name?: unknown }).name === "AbortError" &&
    (value instanceof Error || (typeof DOMException !== "undefined" && value instanceof DOMException))
  );
}
