/**
 * An error as plain data, for event payloads and results that must survive `structuredClone`,
 * `JSON.stringify` and a thread boundary (an `Error` loses its `code` and `details` there, and
 * `JSON.stringify` prints `{}`). Carries what the SDK's errors say — never a server body, which
 * `MatrixApiError.data` keeps on the thrown error only.
 */
export interface ErrorInfo {
  /** The class name, e.g. `DrainError`, `MatrixApiError`, or `Error` for a foreign one. */
  name: string;
  /**
   * The error's string `code`: the SDK's stable code for its own errors (`fetch_failed`,
   * `network_error`, …), a foreign error's own where it has one (Node's `ECONNREFUSED` in a cause),
   * else `undefined`.
   */
  code: string | undefined;
  message: string;
  /** HTTP status and Matrix `errcode`, when a server answered. */
  status?: number;
  errcode?: string;
  retryAfterMs?: number;
  /** The error's structured context (ids, cursors, field paths), as plain data. */
  details?: Readonly<Record<string, unknown>>;
  cause?: ErrorInfo;
}

const MAX_DEPTH = 4;

/** The plain form of whatever was thrown. */
export function toErrorInfo(error: unknown, depth = 0): ErrorInfo {
  if (typeof error !== "object" || error === null) {
    return { name: "Error", code: undefined, message: String(error) };
  }
  const e = error as Record<string, unknown>;
  const info: ErrorInfo = {
    name: typeof e.name === "string" ? e.name : "Error",
    code: typeof e.code === "string" ? e.code : undefined,
    message: typeof e.message === "string" ? e.message : String(error),
  };
  if (typeof e.status === "number") info.status = e.status;
  if (typeof e.errcode === "string") info.errcode = e.errcode;
  if (typeof e.retryAfterMs === "number") info.retryAfterMs = e.retryAfterMs;
  const details = plain(e.details, 0);
  if (details !== undefined && typeof details === "object" && !Array.isArray(details)) {
    info.details = details as Record<string, unknown>;
  }
  if (e.cause !== undefined && depth < MAX_DEPTH) info.cause = toErrorInfo(e.cause, depth + 1);
  return info;
}

/** Primitives, arrays and plain objects, depth-limited; errors by their info; anything else dropped. */
function plain(value: unknown, depth: number): unknown {
  if (value === null || ["string", "number", "boolean"].includes(typeof value)) return value;
  if (depth >= MAX_DEPTH || typeof value !== "object") return undefined;
  if (value instanceof Error) return toErrorInfo(value, depth + 1);
  if (Array.isArray(value)) return value.map((item) => plain(item, depth + 1)).filter((v) => v !== undefined);
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const converted = plain(item, depth + 1);
    if (converted !== undefined) out[key] = converted;
  }
  return out;
}

/**
 * A payload type with its `error` field (if any) as `ErrorInfo`; an optional `error` (a stale
 * device after a truncated drain has none) stays optional.
 */
export type WithErrorInfo<P> = P extends { error: unknown }
  ? Omit<P, "error"> & { error: ErrorInfo }
  : P extends { error?: unknown }
    ? Omit<P, "error"> & { error?: ErrorInfo | undefined }
    : P;

/** Every payload of an event map with plain errors. */
export type WithErrorInfoEvents<Events> = { [K in keyof Events]: WithErrorInfo<Events[K]> };

/** `payload` with its `error` field (if any) replaced by its plain form. */
export function withErrorInfo<P>(payload: P): WithErrorInfo<P> {
  if (typeof payload !== "object" || payload === null || !("error" in payload))
    return payload as WithErrorInfo<P>;
  const error = (payload as { error: unknown }).error;
  return { ...payload, error: error === undefined ? undefined : toErrorInfo(error) } as WithErrorInfo<P>;
}
