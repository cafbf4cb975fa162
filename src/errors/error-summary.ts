/**
 * What a log line says about an error: its name, code, HTTP status, errcode and message. Never the
 * error object itself: a logger that serialises it would also write its `data` (a server body),
 * `details` or `cause` chain, which are for the app to inspect, not for logs. SDK messages never
 * hold keys, recovery keys or tokens (see `SdkError`).
 */
export function errorSummary(error: unknown): Record<string, unknown> {
  if (typeof error !== "object" || error === null) return { error: String(error) };
  const e = error as {
    name?: unknown;
    code?: unknown;
    status?: unknown;
    errcode?: unknown;
    message?: unknown;
  };
  return { name: e.name, code: e.code, status: e.status, errcode: e.errcode, message: e.message };
}
