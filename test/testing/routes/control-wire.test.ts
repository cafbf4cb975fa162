import { describe, expect, it } from "vitest";
import { createMockHomeserver, MatrixError } from "../../../src/testing/index.js";
import { asBadParam, camelCased } from "../../../src/testing/routes/control-wire.js";

describe("camelCased", () => {
  it("renames every top-level snake_case key, drops absent fields and leaves nested JSON as sent", () => {
    const options = camelCased({
      user_id: "@a:localhost",
      events_per_page: 3,
      display_name: null,
      device_keys: { user_id: "@a:localhost", device_id: "D" },
      pages: undefined,
      kind: "never-ends",
    });

    expect(options).toEqual({
      userId: "@a:localhost",
      eventsPerPage: 3,
      displayName: null,
      deviceKeys: { user_id: "@a:localhost", device_id: "D" },
      kind: "never-ends",
    });
    expect(Object.hasOwn(options, "pages")).toBe(false);
  });
});

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe("asBadParam", () => {
  it("turns a RangeError into 400 M_INVALID_PARAM with its message and lets other errors through", () => {
    const range = thrownBy(() =>
      asBadParam(() => {
        throw new RangeError("times must be a positive integer");
      }),
    );

    expect(range).toBeInstanceOf(MatrixError);
    expect(range).toMatchObject({
      status: 400,
      errcode: "M_INVALID_PARAM",
      error: "times must be a positive integer",
    });
    expect(() =>
      asBadParam(() => {
        throw new TypeError("a bug");
      }),
    ).toThrow(TypeError);
    expect(asBadParam(() => 7)).toBe(7);
  });
});

describe("the control routes", () => {
  async function send(
    hs: ReturnType<typeof createMockHomeserver>,
    method: string,
    path: string,
    body: unknown,
  ) {
    const res = await hs.fetch(path, { method, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it("hand every snake_case field to the in-process call under its camelCase name", async () => {
    const hs = createMockHomeserver();
    const alice = hs.control.createUser("alice")!;

    const faults = await send(hs, "PUT", "/_mock/faults", {
      latency_ms: 5,
      server_error_rate: 0.1,
      rate_limit_rate: 0.2,
      drop_rate: 0.3,
      lost_response_rate: 0.1,
      server_error_status: 503,
      retry_after_ms: 40,
      seed: 9,
    });
    const failure = await send(hs, "POST", "/_mock/failures", {
      method: "PUT",
      path: "/_matrix/client/v3/sendToDevice/*",
      times: 2,
      when: "after",
      drop: false,
      status: 429,
      errcode: "M_LIMIT_EXCEEDED",
      error: "slow down",
      retry_after_ms: 1500,
    });
    const answer = await send(hs, "POST", "/_mock/failures", {
      path: "/_matrix/client/v3/sync",
      status: 200,
      body: { events: "nope" },
    });
    const rawAnswer = await send(hs, "POST", "/_mock/failures", {
      path: "/_matrix/client/versions",
      status: 200,
      raw_body: "{",
    });
    const fault = await send(hs, "PUT", "/_mock/dehydrated_events_fault", {
      kind: "never-ends",
      user_id: alice.userId,
      after_pages: 1,
      pages: 2,
      events_per_page: 3,
    });
    const lifetimes = await send(hs, "PUT", "/_mock/token_lifetimes", {
      access_token_ms: 60_000,
      refresh_token_ms: null,
    });

    expect([faults, failure, answer, rawAnswer, fault, lifetimes].map((r) => r.status)).toEqual(
      Array(6).fill(200),
    );
    expect(hs.control.faults()).toEqual({
      latencyMs: 5,
      serverErrorRate: 0.1,
      rateLimitRate: 0.2,
      dropRate: 0.3,
      lostResponseRate: 0.1,
      serverErrorStatus: 503,
      retryAfterMs: 40,
      seed: 9,
    });
    expect(hs.control.scriptedFailures()).toEqual([
      {
        id: expect.any(Number),
        method: "PUT",
        path: "/_matrix/client/v3/sendToDevice/*",
        remaining: 2,
        when: "after",
        drop: false,
        status: 429,
        errcode: "M_LIMIT_EXCEEDED",
        error: "slow down",
        retryAfterMs: 1500,
        body: undefined,
        rawBody: undefined,
      },
      expect.objectContaining({ status: 200, body: { events: "nope" }, rawBody: undefined }),
      expect.objectContaining({ status: 200, body: undefined, rawBody: "{" }),
    ]);
    expect(hs.control.dehydratedEventsFault()).toEqual({
      kind: "never-ends",
      userId: alice.userId,
      afterPages: 1,
      eventsPerPage: 3,
      pagesLeft: 2,
      correctPagesLeft: 1,
      served: 0,
    });
    expect(hs.control.tokenLifetimes()).toEqual({ accessTokenMs: 60_000, refreshTokenMs: null });
  });

  it("answer a value the in-process call refuses with 400 M_INVALID_PARAM and change nothing", async () => {
    const hs = createMockHomeserver();
    const before = hs.control.faults();

    const rates = await send(hs, "PUT", "/_mock/faults", { drop_rate: 0.7, server_error_rate: 0.7 });
    const eventsPerPage = await send(hs, "PUT", "/_mock/dehydrated_events_fault", {
      kind: "repeat-cursor",
      events_per_page: 2,
    });

    expect(rates).toMatchObject({ status: 400, body: { errcode: "M_INVALID_PARAM" } });
    expect(eventsPerPage).toMatchObject({
      status: 400,
      body: { errcode: "M_INVALID_PARAM", error: "eventsPerPage applies to never-ends only" },
    });
    expect(hs.control.faults()).toEqual(before);
    expect(hs.control.dehydratedEventsFault()).toBeUndefined();
  });
});
