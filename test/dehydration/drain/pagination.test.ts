import { describe, expect, it } from "vitest";
import {
  choosePageLimit,
  decidePageOutcome,
  defaultPaginationLimits,
  type EventsVariant,
  fallbackVariant,
  initialEventsVariant,
  type PageDecision,
  type PaginationState,
  planPageRequest,
} from "../../../src/dehydration/drain/pagination.js";

function state(overrides: Partial<PaginationState> = {}): PaginationState {
  return {
    variant: "get",
    requestCursor: "d10",
    seenCursors: new Set(["d10"]),
    eventsBefore: 100,
    emptyPagesBefore: 0,
    elapsedMs: 1_000,
    ...overrides,
  };
}

describe("planPageRequest", () => {
  const cases: {
    name: string;
    variant: EventsVariant;
    cursor: string | undefined;
    limit: number | undefined;
    sendLimit?: boolean;
    expected: ReturnType<typeof planPageRequest>;
  }[] = [
    {
      name: "asks for the first GET page with only a limit",
      variant: "get",
      cursor: undefined,
      limit: 500,
      expected: { method: "GET", query: { limit: "500" }, body: undefined },
    },
    {
      name: "asks for a later GET page with from and limit",
      variant: "get",
      cursor: "d42",
      limit: 480,
      expected: { method: "GET", query: { from: "d42", limit: "480" }, body: undefined },
    },
    {
      name: "leaves limit out of a GET request when none is chosen",
      variant: "get",
      cursor: "d42",
      limit: undefined,
      expected: { method: "GET", query: { from: "d42" }, body: undefined },
    },
    {
      name: "asks for the first POST page with an empty body and the limit in the query",
      variant: "post",
      cursor: undefined,
      limit: 500,
      expected: { method: "POST", query: { limit: "500" }, body: {} },
    },
    {
      name: "sends the cursor as next_batch and the limit in the query in the POST form",
      variant: "post",
      cursor: "d42",
      limit: 500,
      expected: { method: "POST", query: { limit: "500" }, body: { next_batch: "d42" } },
    },
    {
      name: "leaves the limit out of a POST to a server that refused it",
      variant: "post",
      cursor: "d42",
      limit: 500,
      sendLimit: false,
      expected: { method: "POST", query: {}, body: { next_batch: "d42" } },
    },
    {
      name: "leaves the limit out of a GET to a server that refused it",
      variant: "get",
      cursor: "d42",
      limit: 500,
      sendLimit: false,
      expected: { method: "GET", query: { from: "d42" }, body: undefined },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(
        planPageRequest({
          variant: c.variant,
          cursor: c.cursor,
          limit: c.limit,
          ...(c.sendLimit === undefined ? {} : { sendLimit: c.sendLimit }),
        }),
      ).toEqual(c.expected);
    });
  }

  it("tries the MSC's current GET form first", () => {
    expect(initialEventsVariant).toBe("get");
  });
});

describe("fallbackVariant", () => {
  const cases: {
    name: string;
    variant: EventsVariant;
    status: number;
    errcode: string | undefined;
    expected: EventsVariant | undefined;
  }[] = [
    {
      name: "falls back to POST on Synapse's 405 M_UNRECOGNIZED",
      variant: "get",
      status: 405,
      errcode: "M_UNRECOGNIZED",
      expected: "post",
    },
    {
      name: "falls back to POST on a bare 405 without a body",
      variant: "get",
      status: 405,
      errcode: undefined,
      expected: "post",
    },
    {
      name: "falls back to POST on 404 M_UNRECOGNIZED",
      variant: "get",
      status: 404,
      errcode: "M_UNRECOGNIZED",
      expected: "post",
    },
    {
      name: "does not fall back on 404 M_NOT_FOUND",
      variant: "get",
      status: 404,
      errcode: "M_NOT_FOUND",
      expected: undefined,
    },
    {
      name: "does not fall back on 403 M_FORBIDDEN (not our device)",
      variant: "get",
      status: 403,
      errcode: "M_FORBIDDEN",
      expected: undefined,
    },
    {
      name: "does not fall back on 400 M_INVALID_PARAM (bad token)",
      variant: "get",
      status: 400,
      errcode: "M_INVALID_PARAM",
      expected: undefined,
    },
    {
      name: "does not fall back on a server error",
      variant: "get",
      status: 500,
      errcode: "M_UNKNOWN",
      expected: undefined,
    },
    {
      name: "has nothing after POST, even on 405",
      variant: "post",
      status: 405,
      errcode: "M_UNRECOGNIZED",
      expected: undefined,
    },
    {
      name: "has nothing after POST on 404 M_UNRECOGNIZED (feature off)",
      variant: "post",
      status: 404,
      errcode: "M_UNRECOGNIZED",
      expected: undefined,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(fallbackVariant(c.variant, { status: c.status, errcode: c.errcode })).toBe(c.expected);
    });
  }
});

describe("decidePageOutcome", () => {
  const limits = defaultPaginationLimits;
  const cases: {
    name: string;
    state: Partial<PaginationState>;
    page: { eventCount: number; nextBatch: string | undefined };
    limits?: Partial<typeof limits>;
    expected: PageDecision;
  }[] = [
    // Ordinary progress, every variant.
    {
      name: "continues a GET drain with the next cursor",
      state: {},
      page: { eventCount: 100, nextBatch: "d20" },
      expected: { kind: "continue", cursor: "d20" },
    },
    {
      name: "continues a POST drain with the next cursor",
      state: { variant: "post" },
      page: { eventCount: 50, nextBatch: "d20" },
      expected: { kind: "continue", cursor: "d20" },
    },
    {
      name: "continues from the very first page, which had no cursor",
      state: { requestCursor: undefined, seenCursors: new Set(), eventsBefore: 0 },
      page: { eventCount: 100, nextBatch: "d1" },
      expected: { kind: "continue", cursor: "d1" },
    },
    // End rules.
    {
      name: "ends a GET drain when next_batch is absent (MSC3814 current form)",
      state: {},
      page: { eventCount: 37, nextBatch: undefined },
      expected: { kind: "end", reason: "no_next_batch" },
    },
    {
      name: "ends on an empty last GET page without next_batch",
      state: {},
      page: { eventCount: 0, nextBatch: undefined },
      expected: { kind: "end", reason: "no_next_batch" },
    },
    {
      name: "ends a ruma POST drain on its empty page without next_batch",
      state: { variant: "post" },
      page: { eventCount: 0, nextBatch: undefined },
      expected: { kind: "end", reason: "no_next_batch" },
    },
    {
      name: "ends when the page is empty and the cursor did not advance",
      state: {},
      page: { eventCount: 0, nextBatch: "d10" },
      expected: { kind: "end", reason: "cursor_stalled" },
    },
    {
      name: "ends a legacy POST drain on an empty page even though next_batch moved (Synapse ≤ 1.156)",
      state: { variant: "post" },
      page: { eventCount: 0, nextBatch: "d99" },
      expected: { kind: "end", reason: "empty_page" },
    },
    {
      name: "ends a POST drain whose very first page is empty",
      state: { variant: "post", requestCursor: undefined, seenCursors: new Set(), eventsBefore: 0 },
      page: { eventCount: 0, nextBatch: "d5" },
      expected: { kind: "end", reason: "empty_page" },
    },
    {
      name: "continues past an empty GET page whose cursor advanced (an empty page is not the end)",
      state: {},
      page: { eventCount: 0, nextBatch: "d11" },
      expected: { kind: "continue", cursor: "d11" },
    },
    {
      name: "ends at the cap when the last page carries no next_batch: the end wins",
      state: { eventsBefore: 99_990 },
      page: { eventCount: 50, nextBatch: undefined },
      expected: { kind: "end", reason: "no_next_batch" },
    },
    // Truncation.
    {
      name: "truncates when a non-empty page hands back the cursor it was requested with",
      state: {},
      page: { eventCount: 100, nextBatch: "d10" },
      expected: { kind: "truncate", reason: "repeated_cursor", cursor: "d10" },
    },
    {
      name: "truncates when the server cycles back to an earlier cursor",
      state: { requestCursor: "d30", seenCursors: new Set(["d10", "d20", "d30"]) },
      page: { eventCount: 100, nextBatch: "d20" },
      expected: { kind: "truncate", reason: "repeated_cursor", cursor: "d20" },
    },
    {
      name: "truncates a POST drain that repeats a cursor",
      state: { variant: "post" },
      page: { eventCount: 50, nextBatch: "d10" },
      expected: { kind: "truncate", reason: "repeated_cursor", cursor: "d10" },
    },
    {
      name: "truncates an empty GET page that goes back to an earlier cursor",
      state: { requestCursor: "d30", seenCursors: new Set(["d10", "d30"]) },
      page: { eventCount: 0, nextBatch: "d10" },
      expected: { kind: "truncate", reason: "repeated_cursor", cursor: "d10" },
    },
    {
      name: "truncates at the default event cap of 100,000",
      state: { eventsBefore: 99_900 },
      page: { eventCount: 100, nextBatch: "d20" },
      expected: { kind: "truncate", reason: "event_cap", cursor: "d20" },
    },
    {
      name: "continues one event short of the cap",
      state: { eventsBefore: 99_899 },
      page: { eventCount: 100, nextBatch: "d20" },
      expected: { kind: "continue", cursor: "d20" },
    },
    {
      name: "truncates at a caller's lower cap",
      state: { eventsBefore: 200 },
      page: { eventCount: 100, nextBatch: "d20" },
      limits: { maxEvents: 300 },
      expected: { kind: "truncate", reason: "event_cap", cursor: "d20" },
    },
    {
      name: "truncates a server that sends empty pages with ever-new cursors",
      state: { emptyPagesBefore: 9 },
      page: { eventCount: 0, nextBatch: "d11" },
      expected: { kind: "truncate", reason: "empty_pages", cursor: "d11" },
    },
    {
      name: "does not count a non-empty page towards the empty-page guard",
      state: { emptyPagesBefore: 9 },
      page: { eventCount: 1, nextBatch: "d11" },
      expected: { kind: "continue", cursor: "d11" },
    },
    {
      name: "truncates when the time budget is spent",
      state: { elapsedMs: 15 * 60_000 },
      page: { eventCount: 100, nextBatch: "d20" },
      expected: { kind: "truncate", reason: "time_budget", cursor: "d20" },
    },
    {
      name: "continues one millisecond before the time budget is spent",
      state: { elapsedMs: 15 * 60_000 - 1 },
      page: { eventCount: 100, nextBatch: "d20" },
      expected: { kind: "continue", cursor: "d20" },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const decision = decidePageOutcome(state(c.state), c.page, { ...limits, ...c.limits });
      expect(decision).toEqual(c.expected);
    });
  }
});

describe("choosePageLimit", () => {
  const cases: { name: string; bytes: number; events: number; target?: number; expected: number }[] = [
    {
      name: "asks for ~500 events per 1 MB page before anything is known",
      bytes: 0,
      events: 0,
      expected: 500,
    },
    { name: "asks for fewer events when they turn out larger", bytes: 400_000, events: 100, expected: 250 },
    { name: "asks for more events when they turn out smaller", bytes: 100_000, events: 100, expected: 1_000 },
    { name: "never asks for more than 2,000 events", bytes: 1_000, events: 100, expected: 2_000 },
    { name: "never asks for fewer than 25 events", bytes: 100_000_000, events: 10, expected: 25 },
    { name: "follows a caller's target page size", bytes: 0, events: 0, target: 200_000, expected: 100 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(
        choosePageLimit({ observedBytes: c.bytes, observedEvents: c.events, targetPageBytes: c.target }),
      ).toBe(c.expected);
    });
  }
});
