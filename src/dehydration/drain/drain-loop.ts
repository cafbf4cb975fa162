import { z } from "zod";
import { isAbortError } from "../../errors/abort-error.js";
import { isMatrixApiError } from "../../errors/matrix-api-error.js";
import type { Clock } from "../../time/clock.js";
import type { ReceivedRoomKey } from "../device/rehydrated-device.js";
import { DrainError, type DrainErrorCode } from "./errors.js";
import { digestEvents } from "./event-digest.js";
import {
  choosePageLimit,
  decidePageOutcome,
  defaultPaginationLimits,
  type EventsVariant,
  type PaginationEndReason,
  type PaginationLimits,
  type PaginationTruncationReason,
} from "./pagination.js";
import { defaultSliceBudgetMs, initialSliceEvents, nextSliceSize } from "./slice-sizer.js";
import { yieldToEventLoop } from "./yield.js";

/**
 * The drain engine: pages of a dehydrated device's to-device events in, room keys out, fast and
 * resumable. It talks to two small seams — a page source (HTTP in production) and a sink (the
 * rehydrated device in crypto-wasm) — and to the pure planner in `pagination.ts`.
 *
 * - Pipelined: page k+1 is requested as soon as page k has arrived and been judged, so the network
 *   round-trip overlaps the crypto work of page k instead of adding to it. One page ahead at most,
 *   so memory stays at two pages.
 * - Sliced by time: a page is fed to the crypto layer in calls sized so each takes about
 *   `sliceBudgetMs` (`slice-sizer.ts`), yielding to the event loop in between.
 * - Resumable, and never trusting a cursor it has not earned. MSC3814 deletes a device's messages
 *   only with the device, and a client may replace the device once it has "retrieved" them; the
 *   only proof of that is a drain that read every page from a trusted position to an end rule.
 *   So a drain keeps two positions:
 *   - `trusted`: everything before it is imported — the very start, or where a completed drain
 *     ended. Only an end rule moves it.
 *   - `position`: where an interrupted run resumes (abort, reload, network failure). It moves only
 *     past a page that stored at least one room key: empty pages and pages without a key (what a
 *     server that never ends, or pads its pages, sends) are read again on resume, never skipped.
 *   When a loop guard fires (repeated cursor, event cap, empty pages, time budget), every cursor
 *   learnt since `trusted` is suspect: the cursor the server handed out may lie past messages it
 *   never sent. The resume state rolls back to `trusted`, the run ends `truncated`, and the next
 *   drain reads everything after `trusted` again (re-importing is harmless; skipping is not).
 *   The guards count from `trusted` across resumed runs, so aborting and resuming cannot dodge them.
 */

export type { ReceivedRoomKey } from "../device/rehydrated-device.js";

/** One page as the source hands it over; `events` not yet validated. */
export interface DrainPage {
  events: readonly unknown[];
  nextBatch: string | undefined;
  /** The wire variant that answered (see `pagination.ts`). */
  variant: EventsVariant;
}

/** What a page source is asked for. */
export interface DrainPageRequest {
  deviceId: string;
  /** `undefined` for the first page. */
  cursor: string | undefined;
  /** The page size to ask for (sent where the server accepts it). */
  limit: number;
  signal: AbortSignal;
}

/** Where pages come from: `HttpDrainPageSource` in production, a fake in tests and benchmarks. */
export interface DrainPageSource {
  fetchPage(request: DrainPageRequest): Promise<DrainPage>;
}

/** Where the events go: crypto-wasm's `RehydratedDevice` in production. */
export interface DrainEventSink {
  /** Imports one slice of to-device events; resolves with the room keys it stored. */
  receive(events: readonly unknown[]): Promise<readonly ReceivedRoomKey[]>;
}

/** Pages, events and room keys a drain has handled. */
export interface DrainCounts {
  pages: number;
  events: number;
  roomKeys: number;
}

/** A point in the device's inbox, with what was handled before it. */
export interface DrainPosition extends DrainCounts {
  /** The cursor to request; `undefined` = from the first page. */
  cursor: string | undefined;
  /**
   * The first `events` events of the page at `cursor` are imported already; their digest
   * (`event-digest.ts`) recognises them when the page is read again. Set where a completed drain
   * ended on a page without `next_batch`, the only place no cursor leads past: the next drain
   * re-reads that page and skips its known head instead of importing it again.
   */
  skip?: { events: number; digest: string } | undefined;
}

/** Loop-guard accounting since the trusted position, carried across resumed runs. */
export interface DrainGuardState {
  /** Events received since `trusted`. */
  events: number;
  /** Time spent draining since `trusted`, on the injected clock. */
  elapsedMs: number;
}

/** Where a drain starts, and what a checkpoint stores (see the module comment). */
export interface DrainResumeState {
  /** Where the next run starts. */
  position: DrainPosition;
  /** Everything before this is imported; a truncated drain rolls back here. */
  trusted: DrainPosition;
  guard: DrainGuardState;
}

/** The resume state of a device never drained here: the first page, nothing trusted but that. */
export function initialResumeState(): DrainResumeState {
  const origin: DrainPosition = { cursor: undefined, pages: 0, events: 0, roomKeys: 0 };
  return { position: origin, trusted: origin, guard: { events: 0, elapsedMs: 0 } };
}

/** Reported after each page whose room keys are stored. */
export interface DrainPageReport {
  deviceId: string;
  /** 1-based number of this page, counting pages of earlier, resumed runs too. */
  page: number;
  /** Events on this page (valid or not, skipped or not). */
  events: number;
  /** Events on this page that were not to-device events and were skipped. */
  invalidEvents: number;
  /** Events at the head of this page known to be imported already (see `DrainPosition.skip`). */
  skippedEvents: number;
  /** Room keys stored from this page. */
  roomKeys: number;
  /** The room keys stored from this page: which rooms' undecryptable messages to retry. */
  importedKeys: readonly ReceivedRoomKey[];
  /** Where a later drain would start, as `resume.position.cursor` (or the unchanged resume point). */
  cursor: string | undefined;
  /** `"more"` pages follow; this was the last one because an end rule matched, or it was cut off. */
  next: "more" | "end" | "truncated";
  /** Totals after this page, resumed runs included. */
  totals: DrainCounts;
  /**
   * The resume state to store now: after the last page, the completed (or rolled-back) state;
   * otherwise the new resume point, or `undefined` when this page does not move it.
   */
  resume: DrainResumeState | undefined;
}

interface DrainRunSummary {
  deviceId: string;
  /** Totals, resumed runs included. */
  totals: DrainCounts;
  /** What this run did alone. */
  run: DrainCounts & { invalidEvents: number; skippedEvents: number };
  /** Every room key this run stored, in order. */
  importedKeys: readonly ReceivedRoomKey[];
  /** The resume point this run started from, if any. */
  resumedFrom: string | undefined;
  /** Where a later drain starts: the end position, or (truncated) the trusted one. */
  cursor: string | undefined;
  /** What to store as the resume state. */
  resume: DrainResumeState;
  /** Wall time of this run on the injected clock. */
  durationMs: number;
  /** The longest single call into the crypto layer, on the injected clock. */
  longestSliceMs: number;
}

/** How a drain run ended: completed (an end rule matched) or truncated (a loop guard fired). */
export type DrainRunResult = DrainRunSummary &
  (
    | { outcome: "completed"; endReason: PaginationEndReason }
    | {
        outcome: "truncated";
        reason: PaginationTruncationReason;
        /** The cursor the server offered when the guard fired: not trusted, never resumed from. */
        untrustedCursor: string;
      }
  );

export interface RunDrainOptions extends DrainTuning {
  deviceId: string;
  source: DrainPageSource;
  sink: DrainEventSink;
  clock: Clock;
  /** A checkpoint's resume state; from the first page when omitted. */
  resumeFrom?: DrainResumeState | undefined;
  /** Awaited after each page's room keys are stored (write `report.resume` here). */
  onPageStored?: ((report: DrainPageReport) => Promise<void> | void) | undefined;
  signal?: AbortSignal | undefined;
}

/** How a drain paces itself; every field has a default tuned for crypto-wasm in a UI thread. */
export interface DrainTuning {
  /** Loop guards (defaults in `defaultPaginationLimits`). */
  limits?: Partial<PaginationLimits> | undefined;
  /**
   * How long one call into the crypto layer should take, in ms (default 40). Larger budgets
   * import faster (the per-call cost is amortised over more events) and block the thread longer.
   */
  sliceBudgetMs?: number | undefined;
  /** A fixed number of events per crypto call instead of the time budget (comparisons, tests). */
  sliceSize?: number | undefined;
  /** Page size to aim for, in bytes of JSON (default ~1 MB). */
  targetPageBytes?: number | undefined;
  /** Request the next page before importing this one (default true; false for comparisons). */
  pipelined?: boolean | undefined;
  /** How to let the event loop run between slices (default `yieldToEventLoop`). */
  yieldToEventLoop?: (() => Promise<void>) | undefined;
}

/**
 * A to-device event as MSC3814's events endpoint returns them. Anything else on a page is skipped
 * (and counted), not fatal: it could not carry a room key, and failing the page would hold back
 * every key after it.
 */
const toDeviceEventSchema = z.looseObject({
  type: z.string(),
  sender: z.string(),
  content: z.record(z.string(), z.unknown()),
});

const countsOf = (position: DrainCounts): DrainCounts => ({
  pages: position.pages,
  events: position.events,
  roomKeys: position.roomKeys,
});

/** Runs one drain from `resumeFrom` (or the first page) to an end rule or a loop guard. */
export async function runDrain(options: RunDrainOptions): Promise<DrainRunResult> {
  const { deviceId, source, sink, clock } = options;
  const limits: PaginationLimits = { ...defaultPaginationLimits, ...options.limits };
  const fixedSlice = options.sliceSize === undefined ? undefined : Math.max(1, Math.floor(options.sliceSize));
  const sliceBudgetMs = options.sliceBudgetMs ?? defaultSliceBudgetMs;
  const pipelined = options.pipelined ?? true;
  const yieldNow = options.yieldToEventLoop ?? yieldToEventLoop;
  const startedAtMs = clock.now();
  const start = options.resumeFrom ?? initialResumeState();
  const { trusted } = start;
  const resumedFrom = start.position.cursor;

  const totals: DrainCounts = countsOf(start.position);
  const run = { pages: 0, events: 0, roomKeys: 0, invalidEvents: 0, skippedEvents: 0 };
  const importedKeys: ReceivedRoomKey[] = [];
  const seenCursors = new Set<string>();
  if (resumedFrom !== undefined) seenCursors.add(resumedFrom);
  let emptyPagesInRow = 0;
  let measuredBytes = 0;
  let measuredEvents = 0;
  let longestSliceMs = 0;
  let sliceEvents = fixedSlice ?? initialSliceEvents;
  /** The resume state as last stored; what a failure reports. */
  let stored: DrainResumeState = start;
  const guardAt = (): DrainGuardState => ({
    events: start.guard.events + run.events,
    elapsedMs: start.guard.elapsedMs + (clock.now() - startedAtMs),
  });

  const fail = (code: DrainErrorCode, message: string, cause: unknown): DrainError =>
    new DrainError(code, message, {
      cause,
      details: {
        deviceId,
        cursor: stored.position.cursor,
        pages: totals.pages,
        events: totals.events,
        roomKeys: totals.roomKeys,
      },
    });
  const checkAborted = () => {
    if (options.signal?.aborted) throw fail("aborted", "The drain was aborted", options.signal.reason);
  };
  // Already stopped (the client closed while the device was being opened): send nothing.
  checkAborted();

  // Our own controller, so an abandoned prefetch is cancelled when the run fails.
  const fetches = new AbortController();
  const onAbort = () => fetches.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const request = (cursor: string | undefined, atLeast = 0): Promise<DrainPage> => {
    const chosen = choosePageLimit({
      observedBytes: measuredBytes,
      observedEvents: measuredEvents,
      targetPageBytes: options.targetPageBytes,
    });
    const page = source.fetchPage({
      deviceId,
      cursor,
      limit: Math.max(chosen, atLeast),
      signal: fetches.signal,
    });
    // Settled later (or never, if the run fails first); never an unhandled rejection.
    page.catch(() => {});
    return page;
  };

  const importEvents = async (events: readonly unknown[]) => {
    const keys: ReceivedRoomKey[] = [];
    let invalid = 0;
    for (let start = 0; start < events.length; ) {
      checkAborted();
      const slice = events.slice(start, start + sliceEvents);
      start += slice.length;
      const valid: unknown[] = [];
      for (const event of slice) {
        if (toDeviceEventSchema.safeParse(event).success) valid.push(event);
        else invalid++;
      }
      if (valid.length > 0) {
        // What a page of these events weighs, so the next `limit` keeps pages near the target.
        measuredBytes += JSON.stringify(valid).length;
        measuredEvents += valid.length;
        const before = clock.now();
        try {
          keys.push(...(await sink.receive(valid)));
        } catch (cause) {
          throw fail("import_failed", "The crypto layer failed to import a slice of events", cause);
        }
        const tookMs = clock.now() - before;
        longestSliceMs = Math.max(longestSliceMs, tookMs);
        if (fixedSlice === undefined && slice.length === sliceEvents) {
          sliceEvents = nextSliceSize({ events: slice.length, tookMs, budgetMs: sliceBudgetMs });
        }
      }
      await yieldNow();
    }
    return { keys, invalid };
  };

  /** How many events at the head of the first page are the ones a completed drain imported. */
  const knownHead = async (page: DrainPage): Promise<number> => {
    const skip = start.position.skip;
    if (skip === undefined || skip.events === 0 || page.events.length < skip.events) return 0;
    return (await digestEvents(page.events.slice(0, skip.events))) === skip.digest ? skip.events : 0;
  };

  let cursor = resumedFrom;
  let first = true;
  let pending: Promise<DrainPage> | undefined = request(cursor, start.position.skip?.events ?? 0);
  try {
    for (;;) {
      let page: DrainPage;
      try {
        checkAborted();
        page = await (pending ?? request(cursor));
      } catch (cause) {
        throw fetchFailure(cause, fail, options.signal);
      }
      pending = undefined;
      const eventCount = page.events.length;
      const guard = guardAt();
      const decision = decidePageOutcome(
        {
          variant: page.variant,
          requestCursor: cursor,
          seenCursors,
          eventsBefore: guard.events,
          emptyPagesBefore: emptyPagesInRow,
          elapsedMs: guard.elapsedMs,
        },
        { eventCount, nextBatch: page.nextBatch },
        limits,
      );
      emptyPagesInRow = eventCount === 0 ? emptyPagesInRow + 1 : 0;
      if (decision.kind === "continue") {
        seenCursors.add(decision.cursor);
        if (pipelined) {
          pending = request(decision.cursor);
          // Let the request leave before the crypto work of this page starts.
          await yieldNow();
        }
      }

      const skipped = first ? await knownHead(page) : 0;
      first = false;
      const fresh = skipped === 0 ? page.events : page.events.slice(skipped);
      const imported = await importEvents(fresh);
      run.pages++;
      run.events += eventCount;
      run.roomKeys += imported.keys.length;
      run.invalidEvents += imported.invalid;
      run.skippedEvents += skipped;
      totals.pages++;
      totals.events += eventCount;
      totals.roomKeys += imported.keys.length;
      importedKeys.push(...imported.keys);

      const here: DrainPosition = { cursor: undefined, ...totals };
      let resume: DrainResumeState | undefined;
      if (decision.kind === "continue") {
        // Only a page that stored a key moves the resume point (see the module comment).
        if (imported.keys.length > 0) {
          resume = { position: { ...here, cursor: decision.cursor }, trusted, guard: guardAt() };
        }
      } else if (decision.kind === "end") {
        // The end: the page just read, requested with `cursor`, is where the next drain looks for
        // newer messages; its events are known, so that drain skips them.
        const end: DrainPosition = {
          ...here,
          cursor,
          ...(eventCount === 0
            ? {}
            : { skip: { events: eventCount, digest: await digestEvents(page.events) } }),
        };
        resume = { position: end, trusted: end, guard: { events: 0, elapsedMs: 0 } };
      } else {
        resume = { position: trusted, trusted, guard: { events: 0, elapsedMs: 0 } };
      }
      const next = resume ?? stored;
      const report: DrainPageReport = {
        deviceId,
        page: totals.pages,
        events: eventCount,
        invalidEvents: imported.invalid,
        skippedEvents: skipped,
        roomKeys: imported.keys.length,
        importedKeys: imported.keys,
        cursor: next.position.cursor,
        next: decision.kind === "continue" ? "more" : decision.kind === "end" ? "end" : "truncated",
        totals: { ...totals },
        resume,
      };
      try {
        await options.onPageStored?.(report);
      } catch (cause) {
        if (isAbortError(cause)) throw fail("aborted", "The drain was aborted", cause);
        throw fail("checkpoint_failed", "The drain checkpoint could not be stored", cause);
      }
      stored = next;

      if (decision.kind === "continue") {
        cursor = decision.cursor;
        continue;
      }
      const summary: DrainRunSummary = {
        deviceId,
        totals: { ...totals },
        run: { ...run },
        importedKeys,
        resumedFrom,
        cursor: next.position.cursor,
        resume: next,
        durationMs: clock.now() - startedAtMs,
        longestSliceMs,
      };
      return decision.kind === "end"
        ? { ...summary, outcome: "completed", endReason: decision.reason }
        : { ...summary, outcome: "truncated", reason: decision.reason, untrustedCursor: decision.cursor };
    }
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    if (pending !== undefined) fetches.abort(new Error("drain stopped"));
  }
}

/** Sorts a failed fetch into the drain's codes: aborted, the device went away, or a plain failure. */
function fetchFailure(
  cause: unknown,
  fail: (code: DrainErrorCode, message: string, cause: unknown) => DrainError,
  signal: AbortSignal | undefined,
): DrainError {
  if (cause instanceof DrainError) return cause;
  if (signal?.aborted || isAbortError(cause)) return fail("aborted", "The drain was aborted", cause);
  // Synapse: 403 M_FORBIDDEN when the id is not the user's dehydrated device (any more).
  if (isMatrixApiError(cause) && cause.status === 403) {
    return fail("device_gone", "The dehydrated device is no longer the server's current one", cause);
  }
  return fail("fetch_failed", "A page of the dehydrated device's events could not be fetched", cause);
}
