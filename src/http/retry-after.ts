/**
 * Reads the wait a rate-limited server asks for. Spec v1.10 "Rate limiting": servers send a
 * `Retry-After` header (delay-seconds or an HTTP-date, RFC 9110 §10.2.3) and, deprecated, a
 * `retry_after_ms` body field. The header wins when it parses and disagrees with the body; when the
 * header is just the body's wait rounded up to whole seconds (what servers that send both do), the
 * body's millisecond value is the same wait, only more precise, so it is used. The body field is
 * also the fallback. HTTP dates are measured against the injected clock's `nowMs`.
 */
export function parseRetryAfterHeader(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed === "") return undefined;
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Every HTTP-date form names its month in letters; without this, Date.parse reads "-3" or "1.5"
  // as a year or a day.
  if (!/[A-Za-z]{3}/.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

export function retryAfterMs(
  header: string | null | undefined,
  bodyRetryAfterMs: number | undefined,
  nowMs: number,
): number | undefined {
  const fromHeader = parseRetryAfterHeader(header, nowMs);
  if (fromHeader === undefined) return bodyRetryAfterMs;
  if (bodyRetryAfterMs !== undefined && sameWaitRoundedUp(fromHeader, bodyRetryAfterMs))
    return bodyRetryAfterMs;
  return fromHeader;
}

function sameWaitRoundedUp(headerMs: number, bodyMs: number): boolean {
  return bodyMs >= 0 && headerMs === Math.ceil(bodyMs / 1000) * 1000;
}
