import { describe, expect, it } from "vitest";
import {
  type DrainEventSink,
  type DrainPage,
  type DrainPageReport,
  type DrainPageRequest,
  type DrainPageSource,
  type ReceivedRoomKey,
  type RunDrainOptions,
  runDrain,
} from "../../../src/dehydration/drain/drain-loop.js";
import { type DrainError, isDrainError } from "../../../src/dehydration/drain/errors.js";
import { digestEvents } from "../../../src/dehydration/drain/event-digest.js";
import type { EventsVariant } from "../../../src/dehydration/drain/pagination.js";
import { MatrixApiError } from "../../../src/errors/matrix-api-error.js";
import { ManualClock } from "../../../src/testing/manual-clock.js";

/** A to-device event as the events endpoint returns them; `n` numbers it across the whole inbox. */
function event(n: number): Record<string, unknown> {
  return { type: "m.room.encrypted", sender: "@alice:example.org", content: { n } };
}

interface ScriptedPage {
  events: unknown[];
  nextBatch: string | undefined;
}

/**
 * A page source over a fixed script (cursor → page), with a shared log of what happened when.
 * `"start"` is the first cursor's key.
 */
class ScriptedSource implements DrainPageSource {
  readonly requests: DrainPageRequest[] = [];
  readonly signals: AbortSignal[] = [];
  failures = new Map<string, unknown>();
  /** Cursors whose response is held until released. */
  held = new Map<string, () => void>();
  holdCursors = new Set<string>();

  constructor(
    readonly pages: Map<string, ScriptedPage>,
    readonly log: string[],
    readonly variant: EventsVariant = "get",
  ) {}

  async fetchPage(request: DrainPageRequest): Promise<DrainPage> {
    const key = request.cursor ?? "start";
    this.requests.push(request);
    this.signals.push(request.signal);
    this.log.push(`request ${key}`);
    if (this.holdCursors.has(key)) {
      await new Promise<void>((resolve, reject) => {
        this.held.set(key, resolve);
        request.signal.addEventListener("abort", () => reject(request.signal.reason), { once: true });
      });
    }
    await Promise.resolve();
    const failure = this.failures.get(key);
    if (failure !== undefined) throw failure;
    const page = this.pages.get(key);
    if (!page) throw new Error(`no page at ${key}`);
    this.log.push(`response ${key}`);
    return { events: page.events, nextBatch: page.nextBatch, variant: this.variant };
  }
}

class RecordingSink implements DrainEventSink {
  readonly slices: number[][] = [];
  fail: unknown;

  constructor(readonly log: string[]) {}

  async receive(events: readonly unknown[]): Promise<ReceivedRoomKey[]> {
    const ns = events.map((e) => (e as { content: { n: number } }).content.n);
    this.log.push(`import ${ns[0]}..${ns.at(-1)}`);
    if (this.fail !== undefined) throw this.fail;
    this.slices.push(ns);
    await Promise.resolve();
    this.log.push(`imported ${ns.at(-1)}`);
    // One room key per event, as for a room-key share.
    return ns.map((n) => ({ roomId: "!room:example.org", sessionId: `s${n}`, senderKey: "curve" }));
  }
}

/** An inbox of `total` events in pages of `pageSize`, cursors `c1`, `c2`…; the last page has no next_batch. */
function inbox(total: number, pageSize: number): Map<string, ScriptedPage> {
  const pages = new Map<string, ScriptedPage>();
  const count = Math.ceil(total / pageSize);
  for (let p = 0; p < count; p++) {
    const events = Array.from({ length: Math.min(pageSize, total - p * pageSize) }, (_, i) =>
      event(p * pageSize + i),
    );
    pages.set(p === 0 ? "start" : `c${p}`, { events, nextBatch: p + 1 < count ? `c${p + 1}` : undefined });
  }
  return pages;
}

function setup(
  pages: Map<string, ScriptedPage>,
  options: Partial<RunDrainOptions> = {},
  variant?: EventsVariant,
) {
  const log: string[] = [];
  const source = new ScriptedSource(pages, log, variant);
  const sink = new RecordingSink(log);
  const reports: DrainPageReport[] = [];
  const clock = new ManualClock();
  let yields = 0;
  const run = (extra: Partial<RunDrainOptions> = {}) =>
    runDrain({
      deviceId: "DEHYDRATED/+id",
      source,
      sink,
      clock,
      sliceSize: 10,
      onPageStored: (report) => {
        log.push(`stored page ${report.page}`);
        reports.push(report);
      },
      yieldToEventLoop: async () => {
        yields++;
      },
      ...options,
      ...extra,
    });
  return { log, source, sink, reports, clock, run, yields: () => yields };
}

async function rejection(promise: Promise<unknown>): Promise<DrainError> {
  try {
    await promise;
  } catch (error) {
    expect(isDrainError(error)).toBe(true);
    return error as DrainError;
  }
  throw new Error("expected the drain to fail");
}

describe("runDrain", () => {
  it("imports every event of every page once, in order, and completes at the page without next_batch", async () => {
    const t = setup(inbox(95, 40));
    const result = await t.run();
    expect(result).toMatchObject({
      outcome: "completed",
      endReason: "no_next_batch",
      totals: { pages: 3, events: 95, roomKeys: 95 },
      run: { pages: 3, events: 95, roomKeys: 95, invalidEvents: 0 },
      resumedFrom: undefined,
    });
    expect(t.sink.slices.flat()).toEqual(Array.from({ length: 95 }, (_, i) => i));
    expect(t.source.requests.map((r) => r.cursor)).toEqual([undefined, "c1", "c2"]);
  });

  it("feeds the crypto layer in slices and yields to the event loop between them", async () => {
    const t = setup(inbox(95, 40));
    await t.run();
    expect(t.sink.slices.map((s) => s.length)).toEqual([10, 10, 10, 10, 10, 10, 10, 10, 10, 5]);
    // One yield after every slice, plus one per prefetch so the request leaves first.
    expect(t.yields()).toBe(10 + 2);
  });

  it("requests page k+1 before page k's import has finished (pipelining)", async () => {
    const t = setup(inbox(60, 20));
    await t.run();
    const pageCursors = ["start", "c1", "c2"];
    for (const [k, cursor] of pageCursors.slice(0, -1).entries()) {
      const firstImportOfPage = t.log.indexOf(`import ${k * 20}..${k * 20 + 9}`);
      const lastImportOfPage = t.log.indexOf(`imported ${k * 20 + 19}`);
      const requestNext = t.log.indexOf(`request ${pageCursors[k + 1]}`);
      expect(requestNext).toBeGreaterThan(t.log.indexOf(`response ${cursor}`));
      expect(requestNext).toBeLessThan(firstImportOfPage);
      expect(firstImportOfPage).toBeLessThan(lastImportOfPage);
    }
  });

  it("fetches strictly in turn when pipelining is off", async () => {
    const t = setup(inbox(60, 20), { pipelined: false });
    await t.run();
    expect(t.log.indexOf("request c1")).toBeGreaterThan(t.log.indexOf("stored page 1"));
    expect(t.log.indexOf("request c2")).toBeGreaterThan(t.log.indexOf("stored page 2"));
  });

  it("reports each stored page with the cursor to resume from and the running totals", async () => {
    const t = setup(inbox(50, 20));
    await t.run();
    expect(t.reports.map((r) => [r.page, r.events, r.roomKeys, r.cursor, r.next, r.totals.events])).toEqual([
      [1, 20, 20, "c1", "more", 20],
      [2, 20, 20, "c2", "more", 40],
      // The last page had no next_batch: a later drain re-reads it from its own cursor.
      [3, 10, 10, "c2", "end", 50],
    ]);
    // The checkpoint hook runs before the next page is imported.
    expect(t.log.indexOf("stored page 1")).toBeLessThan(t.log.indexOf("import 20..29"));
  });

  it("resumes from a position: starts at its cursor and continues its counts", async () => {
    const t = setup(inbox(95, 40));
    const result = await t.run({
      resumeFrom: {
        position: { cursor: "c1", pages: 1, events: 40, roomKeys: 40 },
        trusted: { cursor: undefined, pages: 0, events: 0, roomKeys: 0 },
        guard: { events: 40, elapsedMs: 0 },
      },
    });
    expect(t.source.requests.map((r) => r.cursor)).toEqual(["c1", "c2"]);
    expect(t.sink.slices.flat()[0]).toBe(40);
    expect(result).toMatchObject({
      outcome: "completed",
      resumedFrom: "c1",
      totals: { pages: 3, events: 95, roomKeys: 95 },
      run: { pages: 2, events: 55 },
    });
  });

  it("skips and counts events that are not to-device events instead of failing the page", async () => {
    const pages = new Map<string, ScriptedPage>([
      ["start", { events: [event(0), { type: "x" }, "junk", null, event(1)], nextBatch: undefined }],
    ]);
    const t = setup(pages);
    const result = await t.run();
    expect(t.sink.slices.flat()).toEqual([0, 1]);
    expect(result.run).toMatchObject({ events: 5, invalidEvents: 3, roomKeys: 2 });
    expect(t.reports[0]).toMatchObject({ events: 5, invalidEvents: 3 });
  });

  it("asks for ~1 MB pages and adapts the limit to the bytes per event it has seen", async () => {
    const big = (n: number) => ({ ...event(n), content: { n, pad: "x".repeat(3_950) } });
    const pages = new Map<string, ScriptedPage>([
      ["start", { events: [big(0), big(1)], nextBatch: "c1" }],
      ["c1", { events: [big(2)], nextBatch: "c2" }],
      ["c2", { events: [], nextBatch: undefined }],
    ]);
    const t = setup(pages, { pipelined: false });
    await t.run();
    const [first, second] = t.source.requests.map((r) => r.limit);
    expect(first).toBe(500);
    // ~4 KB per event seen on the first page: half as many per page.
    expect(second).toBeGreaterThan(230);
    expect(second).toBeLessThan(260);
  });

  it("is truncated, with the page's keys imported, when the server repeats a cursor", async () => {
    const pages = new Map<string, ScriptedPage>([
      ["start", { events: [event(0)], nextBatch: "c1" }],
      ["c1", { events: [event(1)], nextBatch: "c1" }],
    ]);
    const t = setup(pages);
    const result = await t.run();
    expect(result).toMatchObject({
      outcome: "truncated",
      reason: "repeated_cursor",
      untrustedCursor: "c1",
      // Rolled back: the next drain starts where this one was trusted to, the first page.
      cursor: undefined,
    });
    expect(t.sink.slices.flat()).toEqual([0, 1]);
    expect(t.source.requests).toHaveLength(2);
    expect(t.reports.at(-1)?.next).toBe("truncated");
  });

  it("is truncated at the event cap without requesting another page", async () => {
    const t = setup(inbox(200, 20));
    const result = await t.run({ limits: { maxEvents: 50 } });
    expect(result).toMatchObject({ outcome: "truncated", reason: "event_cap", totals: { events: 60 } });
    expect(t.source.requests).toHaveLength(3);
  });

  it("is truncated when the time budget on the injected clock is spent", async () => {
    const t = setup(inbox(100, 20));
    t.source.holdCursors.add("c2");
    const running = t.run({ limits: { timeBudgetMs: 60_000 } });
    while (!t.source.held.has("c2")) await new Promise((r) => setImmediate(r));
    // A slow server: the third page arrives after the budget is spent.
    await t.clock.advance(60_000);
    t.source.held.get("c2")!();
    const result = await running;
    expect(result).toMatchObject({ outcome: "truncated", reason: "time_budget", untrustedCursor: "c3" });
    expect(t.source.requests.map((r) => r.cursor)).toEqual([undefined, "c1", "c2"]);
    // The page that arrived late is still imported: its keys are no less valuable.
    expect(result.totals.events).toBe(60);
  });

  it("ends a POST-variant drain at an empty page even though next_batch is present", async () => {
    const pages = new Map<string, ScriptedPage>([
      ["start", { events: [event(0)], nextBatch: "d5" }],
      ["d5", { events: [], nextBatch: "d9" }],
    ]);
    const t = setup(pages, {}, "post");
    const result = await t.run();
    // The end position is the empty page's own cursor, not the fresh one it carried: nothing vouches
    // for a cursor that no event came with.
    expect(result).toMatchObject({ outcome: "completed", endReason: "empty_page", cursor: "d5" });
  });

  it("fails with fetch_failed, resume point after the last stored page, when a page cannot be fetched", async () => {
    const t = setup(inbox(60, 20));
    t.source.failures.set("c2", new Error("connection reset"));
    const error = await rejection(t.run());
    expect(error.code).toBe("fetch_failed");
    expect(error.details).toMatchObject({ cursor: "c2", pages: 2, events: 40 });
    // Page c1 was imported and stored although page c2 had already failed in the background.
    expect(t.reports.map((r) => r.page)).toEqual([1, 2]);
  });

  it("reports device_gone when the server answers 403 (the device was replaced)", async () => {
    const t = setup(inbox(60, 20));
    t.source.failures.set(
      "c1",
      new MatrixApiError({
        status: 403,
        errcode: "M_FORBIDDEN",
        error: "You may only fetch messages for your dehydrated device",
        retryAfterMs: undefined,
        softLogout: false,
        kind: "permanent",
        method: "GET",
        path: "/x",
        data: undefined,
      }),
    );
    expect((await rejection(t.run())).code).toBe("device_gone");
  });

  it("stops between slices on abort and cancels the prefetched request", async () => {
    const t = setup(inbox(60, 20));
    const controller = new AbortController();
    t.source.holdCursors.add("c1");
    const sink = t.sink;
    let slices = 0;
    const aborting: DrainEventSink = {
      receive: async (events) => {
        if (++slices === 1) controller.abort(new Error("user left"));
        return sink.receive(events);
      },
    };
    const error = await rejection(t.run({ sink: aborting, signal: controller.signal }));
    expect(error.code).toBe("aborted");
    expect(error.details).toMatchObject({ cursor: undefined, pages: 0 });
    expect(t.sink.slices).toHaveLength(1);
    expect(t.source.signals.at(-1)?.aborted).toBe(true);
  });

  it("fails with import_failed, and cancels the prefetch, when the crypto layer throws", async () => {
    const t = setup(inbox(60, 20));
    t.source.holdCursors.add("c1");
    t.sink.fail = new Error("null pointer passed to rust");
    const error = await rejection(t.run());
    expect(error.code).toBe("import_failed");
    expect(t.source.signals.at(-1)?.aborted).toBe(true);
  });

  it("fails with checkpoint_failed when the checkpoint cannot be written", async () => {
    const t = setup(inbox(60, 20));
    const error = await rejection(
      t.run({
        onPageStored: () => {
          throw new Error("quota exceeded");
        },
      }),
    );
    expect(error.code).toBe("checkpoint_failed");
    expect(error.details).toMatchObject({ cursor: undefined, pages: 1 });
  });

  describe("trusting cursors", () => {
    const origin = { cursor: undefined, pages: 0, events: 0, roomKeys: 0 };

    it("rolls the resume state back to the trusted position when a loop guard fires", async () => {
      // A server that never ends: empty pages whose cursors keep moving past real messages.
      const pages = new Map<string, ScriptedPage>([["start", { events: [event(0)], nextBatch: "c1" }]]);
      for (let i = 1; i <= 12; i++) pages.set(`c${i}`, { events: [], nextBatch: `c${i + 1}` });
      const t = setup(pages);
      const result = await t.run({ limits: { maxEmptyPages: 3 } });
      expect(result).toMatchObject({ outcome: "truncated", reason: "empty_pages", untrustedCursor: "c4" });
      expect(result.resume).toEqual({
        position: origin,
        trusted: origin,
        guard: { events: 0, elapsedMs: 0 },
      });
      expect(t.reports.at(-1)?.resume).toEqual(result.resume);
    });

    it("moves the resume point only past pages that stored a room key", async () => {
      const pages = new Map<string, ScriptedPage>([
        ["start", { events: [event(0)], nextBatch: "c1" }],
        ["c1", { events: [], nextBatch: "c2" }],
        ["c2", { events: [{ type: "m.dummy", sender: "@x:y", content: {} }], nextBatch: "c3" }],
        ["c3", { events: [event(3)], nextBatch: undefined }],
      ]);
      const t = setup(pages);
      const keyless: DrainEventSink = {
        receive: async (events) => {
          const keys = await t.sink.receive(events);
          return (events[0] as { type: string }).type === "m.dummy" ? [] : keys;
        },
      };
      await t.run({ sink: keyless });
      expect(t.reports.map((r) => [r.page, r.resume?.position.cursor ?? "unchanged"])).toEqual([
        [1, "c1"],
        // An empty page and a page without a key are read again on resume, never trusted.
        [2, "unchanged"],
        [3, "unchanged"],
        [4, "c3"],
      ]);
      expect(t.reports.map((r) => r.cursor)).toEqual(["c1", "c1", "c1", "c3"]);
    });

    it("counts the loop guards from the trusted position across resumed runs", async () => {
      const t = setup(inbox(100, 20));
      const result = await t.run({
        limits: { maxEvents: 50 },
        resumeFrom: {
          position: { cursor: "c2", pages: 2, events: 40, roomKeys: 40 },
          trusted: origin,
          guard: { events: 40, elapsedMs: 0 },
        },
      });
      // 40 before the resume + 20 on the first page read now ≥ 50: cut off, back to the start.
      expect(result).toMatchObject({ outcome: "truncated", reason: "event_cap", cursor: undefined });
      expect(t.source.requests.map((r) => r.cursor)).toEqual(["c2"]);
    });

    it("ends at the last page's own cursor and knows its events, so the next drain skips them", async () => {
      const t = setup(inbox(50, 20));
      const first = await t.run();
      const lastPage = inbox(50, 20).get("c2")!.events;
      expect(first.resume.position).toEqual({
        cursor: "c2",
        skip: { events: 10, digest: await digestEvents(lastPage) },
        pages: 3,
        events: 50,
        roomKeys: 50,
      });
      expect(first.resume.trusted).toEqual(first.resume.position);

      t.sink.slices.length = 0;
      t.source.requests.length = 0;
      const second = await t.run({ resumeFrom: first.resume });
      expect(t.source.requests.map((r) => r.cursor)).toEqual(["c2"]);
      // The page is asked for at least as large as the head it must recognise.
      expect(t.source.requests[0]!.limit).toBeGreaterThanOrEqual(10);
      expect(t.sink.slices).toEqual([]);
      expect(second).toMatchObject({
        outcome: "completed",
        run: { events: 10, skippedEvents: 10, roomKeys: 0 },
      });
    });

    it("imports a re-read last page in full when it is shorter than the head it should start with", async () => {
      const t = setup(inbox(50, 20));
      const first = await t.run();
      const short = setup(new Map([["c2", { events: [event(40), event(41)], nextBatch: undefined }]]));
      const second = await short.run({ resumeFrom: first.resume });
      expect(short.sink.slices.flat()).toEqual([40, 41]);
      expect(second.run.skippedEvents).toBe(0);
    });
  });

  describe("slicing by time", () => {
    /** A sink whose calls take 8 ms plus 1.5 ms per event on the clock, like crypto-wasm's. */
    function timedSink(clock: ManualClock, sizes: number[]): DrainEventSink {
      return {
        receive: async (events) => {
          sizes.push(events.length);
          await clock.advance(8 + 1.5 * events.length);
          return [];
        },
      };
    }

    it("grows slices from a small first one until a call takes about the budget", async () => {
      const t = setup(inbox(1_000, 500));
      const sizes: number[] = [];
      await t.run({ sink: timedSink(t.clock, sizes), sliceSize: undefined, sliceBudgetMs: 40 });
      expect(sizes[0]).toBe(8);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(1_000);
      // (40 − 8) / 1.5 ≈ 21 events a call once settled; never a call far over the budget.
      const settled = sizes.slice(4).sort((a, b) => a - b);
      const median = settled[Math.floor(settled.length / 2)]!;
      expect(median).toBeGreaterThanOrEqual(18);
      expect(median).toBeLessThanOrEqual(26);
      expect(Math.max(...sizes.map((n) => 8 + 1.5 * n))).toBeLessThan(50);
    });

    it("takes larger slices under a larger budget", async () => {
      const t = setup(inbox(1_000, 500));
      const sizes: number[] = [];
      await t.run({ sink: timedSink(t.clock, sizes), sliceSize: undefined, sliceBudgetMs: 160 });
      expect(Math.max(...sizes)).toBeGreaterThan(90);
    });
  });
});
