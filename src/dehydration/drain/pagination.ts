/**
 * The pagination planner for a dehydrated device's to-device inbox (MSC3814, "Fetching to-device
 * messages"), as pure functions: data in, decision out; no network, no clock.
 *
 * Three wire variants are live:
 * - `"get"`  — the current MSC text, Synapse ≥ 1.157: `GET …/events?from=&limit=`; `next_batch` is
 *   present iff more may follow; an empty page is not by itself the end.
 * - `"post"` — the legacy form, Synapse ≤ 1.156 (still accepted by 1.157) and ruma servers
 *   (tuwunel, continuwuity): `POST …/events {next_batch}`; the end is an empty `events` array
 *   (Synapse still returns a `next_batch` there, ruma omits it).
 *
 * Fetching never deletes messages (they go only when the device is deleted or replaced), so every
 * decision here errs towards stopping with a typed "truncated" outcome that keeps the device
 * rather than looping: a server that repeats a cursor, never ends, or sends more than a client
 * can import is cut off, and nothing is lost because nothing was deleted.
 */

export type EventsVariant = "get" | "post";

/** The variant tried first on a server we know nothing about: the MSC's current form. */
export const initialEventsVariant: EventsVariant = "get";

/** One request for one page, before path and transport. */
export interface PageRequestPlan {
  method: "GET" | "POST";
  /** Query parameters: `from` (GET) and `limit` (either variant, unless the server refused it). */
  query: Record<string, string>;
  /** `{next_batch}` for the POST variant (`{}` on the first page); `undefined` for GET. */
  body: { next_batch?: string } | undefined;
}

/**
 * Builds the request for the page at `cursor` (`undefined` = the first page). `limit` goes in the
 * query string with both variants: Synapse reads `?limit=` on its POST servlet too (default 100,
 * no upper cap), and ruma servers ignore a query string the call does not define. `sendLimit:
 * false` leaves it out, for a server that refused it (`HttpDrainPageSource` learns that).
 */
export function planPageRequest(input: {
  variant: EventsVariant;
  cursor: string | undefined;
  limit: number | undefined;
  sendLimit?: boolean;
}): PageRequestPlan {
  const query: Record<string, string> = {};
  if (input.variant === "get" && input.cursor !== undefined) query.from = input.cursor;
  if (input.limit !== undefined && input.sendLimit !== false) query.limit = String(input.limit);
  if (input.variant === "post") {
    return {
      method: "POST",
      query,
      body: input.cursor === undefined ? {} : { next_batch: input.cursor },
    };
  }
  return { method: "GET", query, body: undefined };
}

/**
 * Variant negotiation: what to try after a request in `variant` failed. A server without the GET
 * form answers 405 (Synapse with `M_UNRECOGNIZED`, axum with no body) or, when the router does
 * not know the method at all, 404 `M_UNRECOGNIZED`: then the POST form is tried. Anything else
 * (and any failure of the POST form) is the server's answer, not a variant mismatch.
 */
export function fallbackVariant(
  variant: EventsVariant,
  failure: { status: number; errcode: string | undefined },
): EventsVariant | undefined {
  if (variant !== "get") return undefined;
  if (failure.status === 405) return "post";
  if (failure.status === 404 && failure.errcode === "M_UNRECOGNIZED") return "post";
  return undefined;
}

/** Why a drain ended normally. */
export type PaginationEndReason =
  /** The server sent no `next_batch` (MSC3814 current form; ruma's empty last page). */
  | "no_next_batch"
  /** An empty page whose `next_batch` is the cursor it was requested with. */
  | "cursor_stalled"
  /** The legacy POST form's end marker: an empty `events` array. */
  | "empty_page";

/** Why a drain was cut off. The device is kept: its messages are still on the server. */
export type PaginationTruncationReason =
  /** The server handed back a cursor this drain had already requested with: it would loop. */
  | "repeated_cursor"
  /** More events than `maxEvents` (a flood, or a server that never ends). */
  | "event_cap"
  /** Too many empty pages in a row with advancing cursors (a server that never ends). */
  | "empty_pages"
  /** The drain ran longer than `timeBudgetMs` on the injected clock. */
  | "time_budget";

/** Loop guards of a drain: whichever fires first truncates it (and keeps the device). */
export interface PaginationLimits {
  /** Stop after this many events in one drain (default 100,000). */
  maxEvents: number;
  /** Stop after this many consecutive empty pages that still advance the cursor (default 10). */
  maxEmptyPages: number;
  /** Stop when a drain has run this long, in ms (default 15 minutes). */
  timeBudgetMs: number;
}

/** 100,000 events, 10 empty pages in a row, 15 minutes. */
export const defaultPaginationLimits: Readonly<PaginationLimits> = Object.freeze({
  maxEvents: 100_000,
  maxEmptyPages: 10,
  timeBudgetMs: 15 * 60_000,
});

/** Where a drain stands when a page arrives. */
export interface PaginationState {
  variant: EventsVariant;
  /** The cursor the page was requested with; `undefined` for the very first page. */
  requestCursor: string | undefined;
  /** Every cursor this drain has requested with so far (a resume point included). */
  seenCursors: ReadonlySet<string>;
  /** Events received before this page since the drain's trusted start point, resumed runs included. */
  eventsBefore: number;
  /** Empty pages in a row just before this one. */
  emptyPagesBefore: number;
  /**
   * How long this drain has run, on the injected clock: every run since its trusted start point
   * (a resumed run continues the count, so aborting and resuming cannot dodge the budget).
   */
  elapsedMs: number;
}

/** What matters about a page for pagination. */
export interface PageSummary {
  eventCount: number;
  nextBatch: string | undefined;
}

export type PageDecision =
  | { kind: "continue"; cursor: string }
  | { kind: "end"; reason: PaginationEndReason }
  | { kind: "truncate"; reason: PaginationTruncationReason; cursor: string };

/**
 * What to do after a page: continue with a cursor, end, or truncate. The page's own events are
 * imported in every case; the decision is about the *next* request. End rules come first, so an
 * empty page whose cursor stalled is the end, not a repeated cursor.
 */
export function decidePageOutcome(
  state: PaginationState,
  page: PageSummary,
  limits: PaginationLimits,
): PageDecision {
  const { nextBatch } = page;
  if (nextBatch === undefined) return { kind: "end", reason: "no_next_batch" };
  const empty = page.eventCount === 0;
  if (empty && nextBatch === state.requestCursor) return { kind: "end", reason: "cursor_stalled" };
  // MSC3814 before the GET form: "an empty events array" is the end. Synapse ≤ 1.156 still sends a
  // fresh `next_batch` there (the stream's current position), which may keep moving on a busy
  // server, so following it could take many empty round-trips for nothing.
  if (empty && state.variant === "post") return { kind: "end", reason: "empty_page" };

  if (nextBatch === state.requestCursor || state.seenCursors.has(nextBatch)) {
    return { kind: "truncate", reason: "repeated_cursor", cursor: nextBatch };
  }
  if (state.eventsBefore + page.eventCount >= limits.maxEvents) {
    return { kind: "truncate", reason: "event_cap", cursor: nextBatch };
  }
  if (empty && state.emptyPagesBefore + 1 >= limits.maxEmptyPages) {
    return { kind: "truncate", reason: "empty_pages", cursor: nextBatch };
  }
  if (state.elapsedMs >= limits.timeBudgetMs) {
    return { kind: "truncate", reason: "time_budget", cursor: nextBatch };
  }
  return { kind: "continue", cursor: nextBatch };
}

/** Target size of one page's JSON: big enough to amortise latency, small enough to parse quickly. */
export const defaultTargetPageBytes = 1_000_000;
/** What one to-device event to a dehydrated device weighs on the wire (an Olm pre-key message). */
export const typicalEventBytes = 2_000;
const minLimit = 25;
const maxLimit = 2_000;

/**
 * The `limit` to ask for so a page stays around `targetPageBytes`, from the bytes per event seen so
 * far (none yet: ~2 KB per event, so ~500 events per 1 MB page). Clamped, so one odd page cannot
 * push the next request to a single event or to an unbounded size.
 */
export function choosePageLimit(input: {
  observedBytes: number;
  observedEvents: number;
  targetPageBytes?: number;
}): number {
  const target = input.targetPageBytes ?? defaultTargetPageBytes;
  const perEvent =
    input.observedEvents > 0 && input.observedBytes > 0
      ? input.observedBytes / input.observedEvents
      : typicalEventBytes;
  const limit = Math.round(target / perEvent);
  if (!Number.isFinite(limit)) return Math.round(target / typicalEventBytes);
  return Math.min(maxLimit, Math.max(minLimit, limit));
}
