import { z } from "zod";
import { isAbortError } from "../errors/abort-error.js";
import { isMatrixApiError } from "../errors/matrix-api-error.js";
import type { Clock } from "../time/clock.js";
import { DrainError, type DrainErrorCode } from "./drain-errors.js";
import { yieldToEventLoop } from "./drain-yield.js";
import {
  choosePageLimit,
  decidePageOutcome,
  defaultPaginationLimits,
  type EventsVariant,
  type PaginationEndReason,
  type PaginationLimits,
  type PaginationTruncationReason,
} from "./pagination.js";

/**
 * The drain engine: pages of a dehydrated device's to-device events in, room keys out, fast and
 * resumable. It talks to two small seams — a page source (HTTP in production) and a sink (the
 * rehydrated device in crypto-wasm) — and to the pure planner in `pagination.ts`.
 *
 * - Pipelined: page k+1 is requested as soon as page k has arrived and been judged, so the network
 *   round-trip overlaps the crypto work of page k instead of adding to it. One page ahead at most,
 *   so memory stays at two pages.
 * - Sliced: a page is validated and fed to the crypto layer `sliceSize` events at a time, yielding
 *   to the event loop in between, so no single task blocks the thread for long (crypto-wasm needs
 *   ~1 ms per event; one call on 500 events blocks ≈ 0.45 s).
 * - Resumable: `onPageStored` runs after a page's room keys are stored and before the next page is
 *   imported; the caller writes its checkpoint there. Fetching never deletes (MSC3814), so resuming
 *   from a checkpoint — or starting over — loses nothing.
 */

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
  /** The page size to ask for (sent only where the variant accepts it). */
  limit: number;
  signal: AbortSignal;
}

/** Where pages come from: `HttpDrainPageSource` in production, a fake in tests and benchmarks. */
export interface DrainPageSource {
  fetchPage(request: DrainPageRequest): Promise<DrainPage>;
}

/** Where the events go: crypto-wasm's `RehydratedDevice` in production. */
export interface DrainEventSink {
  /** Imports one slice of to-device events; resolves with the number of room keys it stored. */
  receive(events: readonly unknown[]): Promise<number>;
}

/** Pages, events and room keys a drain has handled. */
export interface DrainCounts {
  pages: number;
  events: number;
  roomKeys: number;
}

/** Where a drain stands: the cursor to request next, and what was done before it. */
export interface DrainPosition extends DrainCounts {
  /** `undefined` = from the first page. */
  cursor: string | undefined;
}

/** Reported after each page whose room keys are stored. */
export interface DrainPageReport {
  deviceId: string;
  /** 1-based number of this page, counting pages of earlier, resumed runs too. */
  page: number;
  /** Events on this page (valid or not). */
  events: number;
  /** Events on this page that were not to-device events and were skipped. */
  invalidEvents: number;
  roomKeys: number;
  /**
   * Where a later drain should start: the next page's cursor; on the last page, the cursor of
   * whatever may arrive later (the last one the server gave, else this page's own).
   */
  cursor: string | undefined;
  /** `"more"` pages follow; this was the last one because an end rule matched, or it was cut off. */
  next: "more" | "end" | "truncated";
  /** Totals after this page, resumed runs included. */
  totals: DrainCounts;
}

interface DrainRunSummary {
  deviceId: string;
  /** Totals, resumed runs included. */
  totals: DrainCounts;
  /** What this run did alone. */
  run: DrainCounts & { invalidEvents: number };
  /** The resume point this run started from, if any. */
  resumedFrom: string | undefined;
  /** Where a later drain would start (see `DrainPageReport.cursor`). */
  cursor: string | undefined;
  /** Wall time of this run on the injected clock. */
  durationMs: number;
  /** The longest single call into the crypto layer, on the injected clock. */
  longestSliceMs: number;
}

/** How a drain run ended: completed (an end rule matched) or truncated (a loop guard fired). */
export type DrainRunResult = DrainRunSummary &
  (
    | { outcome: "completed"; endReason: PaginationEndReason }
    | { outcome: "truncated"; reason: PaginationTruncationReason }
  );

export interface RunDrainOptions extends DrainTuning {
  deviceId: string;
  source: DrainPageSource;
  sink: DrainEventSink;
  clock: Clock;
  /** A checkpoint's position; from the first page when omitted. */
  resumeFrom?: DrainPosition | undefined;
  /** Awaited after each page's room keys are stored (write the checkpoint here). */
  onPageStored?: ((report: DrainPageReport) => Promise<void> | void) | undefined;
  signal?: AbortSignal | undefined;
}

/** How a drain paces itself; every field has a default tuned for crypto-wasm in a UI thread. */
export interface DrainTuning {
  /** Loop guards (defaults in `defaultPaginationLimits`). */
  limits?: Partial<PaginationLimits> | undefined;
  /** Events per call into the crypto layer (default 25: ~25 ms of work per task). */
  sliceSize?: number | undefined;
  /** Page size to aim for with the GET variant, in bytes of JSON (default ~1 MB). */
  targetPageBytes?: number | undefined;
  /** Request the next page before importing this one (default true; false for comparisons). */
  pipelined?: boolean | undefined;
  /** How to let the event loop run between slices (default `yieldToEventLoop`). */
  yieldToEventLoop?: (() => Promise<void>) | undefined;
}

export const defaultSliceSize = 25;

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

/** Runs one drain from `resumeFrom` (or the first page) to an end rule or a loop guard. */
export async function runDrain(options: RunDrainOptions): Promise<DrainRunResult> {
  const { deviceId, source, sink, clock } = options;
  const limits: PaginationLimits = { ...defaultPaginationLimits, ...options.limits };
  const sliceSize = Math.max(1, Math.floor(options.sliceSize ?? defaultSliceSize));
  const pipelined = options.pipelined ?? true;
  const yieldNow = options.yieldToEventLoop ?? yieldToEventLoop;
  const startedAtMs = clock.now();
  const resumedFrom = options.resumeFrom?.cursor;

  const totals: DrainCounts = {
    pages: options.resumeFrom?.pages ?? 0,
    events: options.resumeFrom?.events ?? 0,
    roomKeys: options.resumeFrom?.roomKeys ?? 0,
  };
  const run = { pages: 0, events: 0, roomKeys: 0, invalidEvents: 0 };
  const seenCursors = new Set<string>();
  if (resumedFrom !== undefined) seenCursors.add(resumedFrom);
  let emptyPagesInRow = 0;
  let measuredBytes = 0;
  let measuredEvents = 0;
  let longestSliceMs = 0;
  /** The position the last stored page left; what a failure reports as the resume point. */
  let stored: string | undefined = resumedFrom;

  const fail = (code: DrainErrorCode, message: string, cause: unknown): DrainError =>
    new DrainError(code, message, {
      cause,
      details: {
        deviceId,
        cursor: stored,
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
  const request = (cursor: string | undefined): Promise<DrainPage> => {
    const limit = choosePageLimit({
      observedBytes: measuredBytes,
      observedEvents: measuredEvents,
      targetPageBytes: options.targetPageBytes,
    });
    const page = source.fetchPage({ deviceId, cursor, limit, signal: fetches.signal });
    // Settled later (or never, if the run fails first); never an unhandled rejection.
    page.catch(() => {});
    return page;
  };

  const importPage = async (events: readonly unknown[]) => {
    let roomKeys = 0;
    let invalid = 0;
    for (let start = 0; start < events.length; start += sliceSize) {
      checkAborted();
      const valid: unknown[] = [];
      for (const event of events.slice(start, start + sliceSize)) {
        if (toDeviceEventSchema.safeParse(event).success) valid.push(event);
        else invalid++;
      }
      if (valid.length > 0) {
        // What a page of these events weighs, so the next `limit` keeps pages near the target.
        measuredBytes += JSON.stringify(valid).length;
        measuredEvents += valid.length;
        const before = clock.now();
        try {
          roomKeys += await sink.receive(valid);
        } catch (cause) {
          throw fail("import_failed", "The crypto layer failed to import a slice of events", cause);
        }
        longestSliceMs = Math.max(longestSliceMs, clock.now() - before);
      }
      await yieldNow();
    }
    return { roomKeys, invalid };
  };

  let cursor = resumedFrom;
  let pending: Promise<DrainPage> | undefined = request(cursor);
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
      const decision = decidePageOutcome(
        {
          variant: page.variant,
          requestCursor: cursor,
          seenCursors,
          eventsBefore: run.events,
          emptyPagesBefore: emptyPagesInRow,
          startedAtMs,
        },
        { eventCount, nextBatch: page.nextBatch },
        limits,
        clock.now(),
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

      const imported = await importPage(page.events);
      const next = page.nextBatch ?? cursor;
      run.pages++;
      run.events += eventCount;
      run.roomKeys += imported.roomKeys;
      run.invalidEvents += imported.invalid;
      totals.pages++;
      totals.events += eventCount;
      totals.roomKeys += imported.roomKeys;
      const report: DrainPageReport = {
        deviceId,
        page: totals.pages,
        events: eventCount,
        invalidEvents: imported.invalid,
        roomKeys: imported.roomKeys,
        cursor: next,
        next: decision.kind === "continue" ? "more" : decision.kind === "end" ? "end" : "truncated",
        totals: { ...totals },
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
        resumedFrom,
        cursor: next,
        durationMs: clock.now() - startedAtMs,
        longestSliceMs,
      };
      return decision.kind === "end"
        ? { ...summary, outcome: "completed", endReason: decision.reason }
        : { ...summary, outcome: "truncated", reason: decision.reason };
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
