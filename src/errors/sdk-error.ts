/**
 * Base of every error this SDK throws. `code` is a stable machine-readable string; `message` is short
 * and never contains keys, recovery keys or access tokens; `details` carries structured context.
 * Type guards check `name` rather than `instanceof` so they work across realms and duplicate copies.
 */
export class SdkError extends Error {
  override name = "SdkError";
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: string,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }
}

export function isSdkError(value: unknown): value is SdkError {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { code?: unknown }).code === "string" &&
    value instanceof Error
  );
}
