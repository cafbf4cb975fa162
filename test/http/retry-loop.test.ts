import { describe, expect, it } from "vitest";
import { z } from "zod";
import { isAbortError } from "../../src/errors/abort-error.js";
import { isMatrixApiError } from "../../src/errors/matrix-api-error.js";
import { isNetworkError } from "../../src/errors/network-error.js";
import { isTimeoutError } from "../../src/errors/timeout-error.js";
import type { MatrixHttpEvents } from "../../src/http/matrix-http.js";
import { runWithRetry } from "../../src/http/retry-loop.js";
import { defaultRetryConfig } from "../../src/http/retry-policy.js";
import { whoamiResponseSchema } from "../../src/http/schemas/whoami.js";
import { ManualClock } from "../../src/testing/manual-clock.js";
import { fetchFailed, json } from "./scripted-fetch.js";
import { observe, rejection, setup } from "./support.js";

const whoami = {
  method: "GET",
  path: "/_matrix/client/v3/account/whoami",
  schema: whoamiResponseSchema,
} as const;
const ok = () => json(200, { user_id: "@alice:hs.example" });
const unavailable = () => json(503, { errcode: "M_UNKNOWN" });
const claim = (extra: { signal?: AbortSignal; timeoutMs?: number } = {}) =>
  ({
    method: "POST",
    path: "/_matrix/client/v3/keys/claim",
    body: { one_time_keys: { "@bob:hs.example": { BOBDEVICE: "signed_curve25519" } } },
    schema: z.unknown(),
    ...extra,
  }) as const;
const offsets = (calls: { atMs: number }[]) => calls.map((c) => c.atMs - calls[0]!.atMs);

describe("the retry loop", () => {
  it("backs off on 5xx with jitter drawn from the injected random source", async () => {
    const draws = [0.5, 0.25, 0.999];
    const { http, server, clock } = setup({ random: () => draws.shift() ?? 0 });
    const retried: MatrixHttpEvents["requestRetried"][] = [];
    http.events.on("requestRetried", (e) => retried.push(e));
    server.push(unavailable(), unavailable(), unavailable(), ok());
    const req = observe(http.request(whoami));
    await clock.advance(10_000);
    await req.result;
    expect(req.state).toMatchObject({ ok: true });
    // base 500: 0.5 × 500, then 0.25 × 1000, then ⌊0.999 × 2000⌉.
    expect(offsets(server.calls)).toEqual([0, 250, 500, 2_498]);
    expect(retried.map((e) => [e.attempt, e.delayMs, e.outcome, e.status])).toEqual([
      [1, 250, "transient", 503],
      [2, 250, "transient", 503],
      [3, 1_998, "transient", 503],
    ]);
  });

  it("uses decorrelated jitter when configured", async () => {
    const { http, server, clock } = setup({ retry: { jitter: "decorrelated" }, random: () => 0.5 });
    server.push(unavailable(), unavailable(), ok());
    const req = observe(http.request(whoami));
    await clock.advance(10_000);
    await req.result;
    // [500, 1500) → 1000; then [500, 3000) → 1750.
    expect(offsets(server.calls)).toEqual([0, 1_000, 2_750]);
  });

  it("gives up after maxAttempts and throws the last failure", async () => {
    const { http, server, clock } = setup({ retry: { maxAttempts: 3 } });
    server.push(unavailable(), unavailable(), json(504, { errcode: "M_UNKNOWN", error: "last" }));
    const req = observe(http.request(whoami));
    await clock.advance(60_000);
    const settled = await req.result;
    expect(server.calls).toHaveLength(3);
    expect(settled).toMatchObject({ ok: false, error: { status: 504, error: "last" } });
  });

  it("retries network errors for a GET", async () => {
    const { http, server, clock } = setup();
    server.push(fetchFailed(), fetchFailed(), ok());
    const req = observe(http.request(whoami));
    await clock.advance(1_000);
    await req.result;
    expect(req.state).toMatchObject({ ok: true });
    expect(server.calls).toHaveLength(3);
  });

  it.each([
    ["a dropped connection", fetchFailed(), isNetworkError],
    ["a 503", unavailable(), isMatrixApiError],
    ["a 429", json(429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 10 }), isMatrixApiError],
  ] as const)(
    "does not replay a keys/claim POST after %s (a replay burns one-time keys)",
    async (_n, step, guard) => {
      const { http, server, clock } = setup();
      server.push(step, ok());
      const req = observe(http.request(claim()));
      await clock.advance(120_000);
      const settled = await req.result;
      expect(settled.done && !settled.ok && guard(settled.error)).toBe(true);
      expect(server.calls).toHaveLength(1);
      expect(server.remaining).toBe(1);
    },
  );

  it("replays a POST the caller marked safe, such as keys/query", async () => {
    const { http, server, clock } = setup();
    server.push(fetchFailed(), json(200, { device_keys: {} }));
    const req = observe(
      http.request({
        method: "POST",
        path: "/_matrix/client/v3/keys/query",
        body: { device_keys: { "@bob:hs.example": [] } },
        schema: z.unknown(),
        retry: "safe",
      }),
    );
    await clock.advance(250);
    await req.result;
    expect(req.state).toMatchObject({ ok: true, value: { device_keys: {} } });
    expect(server.calls.map((c) => [c.method, c.body])).toEqual([
      ["POST", '{"device_keys":{"@bob:hs.example":[]}}'],
      ["POST", '{"device_keys":{"@bob:hs.example":[]}}'],
    ]);
  });

  it("stops during the backoff sleep when the caller aborts, and sends nothing more", async () => {
    const { http, server, clock } = setup();
    server.push(unavailable(), ok());
    const controller = new AbortController();
    const req = observe(http.request({ ...whoami, signal: controller.signal }));
    await clock.advance(100);
    expect(clock.pendingSleeps).toBe(1);
    controller.abort(new Error("user navigated away"));
    const settled = await req.result;
    expect(settled.done && !settled.ok && isAbortError(settled.error)).toBe(true);
    expect(settled).toMatchObject({ error: { name: "AbortError", code: "aborted" } });
    await clock.advance(10_000);
    expect(server.calls).toHaveLength(1);
    expect(clock.pendingSleeps).toBe(0);
  });

  it.each(["hang", "hang-ignoring-signal"] as const)(
    "stops an in-flight request when the caller aborts (fetch: %s)",
    async (step) => {
      const { http, server, clock } = setup();
      server.push(step);
      const controller = new AbortController();
      const req = observe(http.request({ ...whoami, signal: controller.signal }));
      await clock.advance(1_000);
      expect(req.state.done).toBe(false);
      controller.abort();
      const settled = await req.result;
      expect(settled.done && !settled.ok && isAbortError(settled.error)).toBe(true);
      // The per-attempt timer was cancelled too.
      expect(clock.pendingSleeps).toBe(0);
    },
  );

  it("sends nothing when the signal is already aborted", async () => {
    const { http, server } = setup();
    const error = await rejection(http.request({ ...whoami, signal: AbortSignal.abort() }));
    expect(isAbortError(error)).toBe(true);
    expect(server.calls).toHaveLength(0);
  });

  it("times out an attempt on the injected clock and does not replay a keys/claim", async () => {
    const { http, server, clock } = setup();
    server.push("hang", ok());
    const req = observe(http.request(claim({ timeoutMs: 5_000 })));
    await clock.advance(4_999);
    expect(req.state.done).toBe(false);
    await clock.advance(1);
    const settled = await req.result;
    expect(settled).toMatchObject({ ok: false, error: { name: "TimeoutError", timeoutMs: 5_000 } });
    expect(server.calls).toHaveLength(1);
  });

  it("retries a GET that timed out, even when fetch ignores the abort", async () => {
    const { http, server, clock } = setup({ defaultTimeoutMs: 2_000 });
    server.push("hang-ignoring-signal", ok());
    const req = observe(http.request(whoami));
    await clock.advance(2_000 + 250);
    await req.result;
    expect(req.state).toMatchObject({ ok: true });
    expect(offsets(server.calls)).toEqual([0, 2_250]);
  });

  it("keeps the attempt timeout above a long-poll timeout the request asks the server for", async () => {
    const { http, server, clock } = setup({ defaultTimeoutMs: 10_000, longPollMarginMs: 15_000 });
    server.push("hang");
    const req = observe(
      http.request({
        method: "POST",
        path: "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync",
        query: { timeout: 30_000, pos: "p1" },
        body: {},
        schema: z.unknown(),
      }),
    );
    await clock.advance(44_999);
    expect(req.state.done).toBe(false);
    await clock.advance(1);
    const settled = await req.result;
    expect(settled.done && !settled.ok && isTimeoutError(settled.error)).toBe(true);
    expect(server.calls[0]!.url.search).toBe("?timeout=30000&pos=p1");
  });

  it("logs each retry as one line that names the method and path once", async () => {
    const { http, server, clock, logger } = setup({ defaultTimeoutMs: 1_000, random: () => 0 });
    server.push(unavailable(), fetchFailed(), "hang", ok());
    const req = observe(http.request({ ...whoami, query: { x: "1" } }));
    await clock.advance(10_000);
    await req.result;
    expect(req.state).toMatchObject({ ok: true });
    const request = "GET /_matrix/client/v3/account/whoami";
    expect(logger.lines).toEqual([
      `warn ${request} failed with 503 M_UNKNOWN; retrying in 0 ms (attempt 2 of 5)`,
      `warn ${request} failed: network error; retrying in 0 ms (attempt 3 of 5)`,
      `warn ${request} timed out after 1000 ms; retrying in 0 ms (attempt 4 of 5)`,
    ]);
  });

  it("propagates a bug inside an attempt at once instead of retrying it", async () => {
    const clock = new ManualClock();
    let calls = 0;
    const error = await rejection(
      runWithRetry(
        async () => {
          calls++;
          throw new RangeError("bug");
        },
        {
          clock,
          random: () => 0.5,
          config: defaultRetryConfig,
          mode: "safe",
          timeoutMs: 1_000,
          method: "GET",
          path: "/x",
        },
      ),
    );
    expect(error).toBeInstanceOf(RangeError);
    expect(calls).toBe(1);
    expect(clock.pendingSleeps).toBe(0);
  });
});
