import type { FaultKind } from "./faults.js";

/**
 * What the mock saw, for tests to read: one entry per client request (control calls excluded), in
 * the order requests started. `startOrder`/`endOrder` come from one counter shared by starts and
 * ends, so a test can tell whether two requests overlapped without looking at wall time.
 */
export interface RequestLogEntry {
  /** Position among logged requests, from 1. */
  seq: number;
  method: string;
  /** The URL path, still encoded. */
  path: string;
  /** The query string without `access_token` (empty when none). */
  query: string;
  /**
   * The request body with secrets redacted (`log-redaction.ts`): parsed JSON, or the text when it
   * is not JSON; `undefined` for GET and HEAD and when there was none. Tests read what a client
   * asked for here, e.g. the `next_batch` of each dehydrated-device events POST.
   */
  body: unknown;
  /** The authenticated user, when the request carried a valid token. */
  userId: string | undefined;
  /** Response status; `null` while in flight and for dropped connections. */
  status: number | null;
  errcode: string | undefined;
  dropped: boolean;
  /** Set when the response came from fault injection rather than the route. */
  fault: "random" | "scripted" | undefined;
  /** What that fault did; `lost-response` and `replaced-response` mean the request was processed. */
  faultKind: FaultKind | undefined;
  /** When a handler threw unexpectedly (answered 500 `M_UNKNOWN`): the error's name and message. */
  internalError?: string;
  startedAt: number;
  endedAt: number | null;
  startOrder: number;
  endOrder: number | null;
}

export class RequestLog {
  readonly #entries: RequestLogEntry[] = [];
  #seq = 0;
  #order = 0;

  constructor(readonly capacity = 10_000) {}

  start(method: string, path: string, query: string, body: unknown, now: number): RequestLogEntry {
    const entry: RequestLogEntry = {
      seq: ++this.#seq,
      method,
      path,
      query,
      body,
      userId: undefined,
      status: null,
      errcode: undefined,
      dropped: false,
      fault: undefined,
      faultKind: undefined,
      startedAt: now,
      endedAt: null,
      startOrder: ++this.#order,
      endOrder: null,
    };
    this.#entries.push(entry);
    // Trim in chunks so a long run stays bounded without an O(n) shift per request.
    if (this.#entries.length > this.capacity * 1.25)
      this.#entries.splice(0, this.#entries.length - this.capacity);
    return entry;
  }

  end(
    entry: RequestLogEntry,
    outcome: {
      status: number | null;
      errcode?: string;
      dropped?: boolean;
      fault?: { source: "random" | "scripted"; kind: FaultKind };
    },
    now: number,
  ): void {
    entry.status = outcome.status;
    entry.errcode = outcome.errcode;
    entry.dropped = outcome.dropped ?? false;
    entry.fault = outcome.fault?.source;
    entry.faultKind = outcome.fault?.kind;
    entry.endedAt = now;
    entry.endOrder = ++this.#order;
  }

  entries(): RequestLogEntry[] {
    return this.#entries.slice(-this.capacity).map((e) => ({ ...e }));
  }

  clear(): void {
    this.#entries.length = 0;
  }
}

/** The query string with any `access_token` removed, so logs never hold a token. */
export function redactQuery(search: URLSearchParams): string {
  const copy = new URLSearchParams(search);
  copy.delete("access_token");
  return copy.toString();
}
