import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createMockHomeserver, ManualClock, startMockServer } from "../../src/testing/index.js";
import { call, type Harness, register, startHarness, transports } from "./support/transports.js";
import { outcomes, VERSIONS } from "./support/versions-outcomes.js";

describe.each(transports)("fault injection (%s)", (transport) => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness(transport);
  });
  afterEach(async () => {
    await h.close();
  });

  it("gives the same fault sequence for the same seed, and another for another seed", async () => {
    const rates = { serverErrorRate: 0.25, rateLimitRate: 0.25, dropRate: 0.2 };
    h.homeserver.control.setFaults({ ...rates, seed: 42 });
    const first = await outcomes(h, 40);
    h.homeserver.control.setFaults({ seed: 42 });
    const again = await outcomes(h, 40);
    h.homeserver.control.setFaults({ seed: 7 });
    const other = await outcomes(h, 40);
    expect(again).toEqual(first);
    expect(other).not.toEqual(first);
    expect(new Set(first)).toEqual(new Set(["200", "500", "429", "dropped"]));
  });

  it("sends 429 M_LIMIT_EXCEEDED with retry_after_ms and a Retry-After header in seconds", async () => {
    h.homeserver.control.setFaults({ rateLimitRate: 1, retryAfterMs: 1500 });
    const res = await call(h, "GET", VERSIONS);
    expect(res.status).toBe(429);
    expect(res.body).toEqual({
      errcode: "M_LIMIT_EXCEEDED",
      error: "Too Many Requests",
      retry_after_ms: 1500,
    });
    expect(res.headers.get("retry-after")).toBe("2");
  });

  it("sends the configured 5xx status with M_UNKNOWN", async () => {
    h.homeserver.control.setFaults({ serverErrorRate: 1, serverErrorStatus: 503 });
    const res = await call(h, "GET", VERSIONS);
    expect(res.status).toBe(503);
    expect(res.body.errcode).toBe("M_UNKNOWN");
  });

  it("drops the connection: fetch rejects with a TypeError like a network failure", async () => {
    h.homeserver.control.setFaults({ dropRate: 1 });
    await expect(h.fetch(`${h.url}${VERSIONS}`)).rejects.toBeInstanceOf(TypeError);
    expect(h.homeserver.control.requestLog().at(-1)).toMatchObject({
      dropped: true,
      status: null,
      fault: "random",
    });
  });

  it("fails a scripted method + path exactly N times, before the handler runs", async () => {
    const alice = await register(h, "alice");
    h.homeserver.control.scriptFailure({
      method: "PUT",
      path: "/_matrix/client/v3/user/{userId}/account_data/*",
      times: 2,
      status: 502,
      errcode: "M_UNKNOWN",
    });
    const path = `/_matrix/client/v3/user/${alice.userId}/account_data/x`;
    const get = await call(h, "GET", path, { token: alice.token });
    expect(get.status).toBe(404);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      statuses.push((await call(h, "PUT", path, { token: alice.token, body: { n: i } })).status);
    }
    expect(statuses).toEqual([502, 502, 200]);
    expect(h.homeserver.state.accountData.get(alice.userId, "x")).toEqual({ n: 2 });
    expect(h.homeserver.control.scriptedFailures()).toEqual([]);
  });

  it("can lose the response after the request was processed", async () => {
    const alice = await register(h, "alice");
    h.homeserver.control.scriptFailure({ path: "/_matrix/client/v3/user/*", when: "after", drop: true });
    const path = `/_matrix/client/v3/user/${alice.userId}/account_data/x`;
    await expect(
      h.fetch(`${h.url}${path}`, {
        method: "PUT",
        headers: { Authorization: `Bearer ${alice.token}` },
        body: JSON.stringify({ saved: true }),
      }),
    ).rejects.toBeInstanceOf(TypeError);
    expect(h.homeserver.state.accountData.get(alice.userId, "x")).toEqual({ saved: true });
  });

  it("does not fault, delay or log control calls", async () => {
    h.homeserver.control.setFaults({ dropRate: 1 });
    const res = await call(h, "GET", "/_mock/faults");
    expect(res.status).toBe(200);
    expect(res.body.drop_rate).toBe(1);
    expect(h.homeserver.control.requestLog()).toEqual([]);
  });

  it("is driven over HTTP by /_mock/ with the same effects", async () => {
    const put = await call(h, "PUT", "/_mock/faults", {
      body: { rate_limit_rate: 1, retry_after_ms: 250, seed: 3 },
    });
    expect(put.body).toMatchObject({ rate_limit_rate: 1, retry_after_ms: 250, seed: 3 });
    expect((await call(h, "GET", VERSIONS)).status).toBe(429);
    await call(h, "POST", "/_mock/reset");
    expect((await call(h, "GET", VERSIONS)).status).toBe(200);

    const scripted = await call(h, "POST", "/_mock/failures", {
      body: { method: "GET", path: VERSIONS, status: 503, times: 1 },
    });
    expect(scripted.body).toMatchObject({ id: expect.any(Number), remaining: 1, status: 503 });
    expect((await call(h, "GET", "/_mock/failures")).body.failures).toHaveLength(1);
    expect((await call(h, "GET", VERSIONS)).status).toBe(503);
    expect((await call(h, "GET", VERSIONS)).status).toBe(200);

    await call(h, "POST", "/_mock/failures", { body: { path: VERSIONS } });
    await call(h, "DELETE", "/_mock/failures");
    expect((await call(h, "GET", VERSIONS)).status).toBe(200);

    const log = await call(h, "GET", "/_mock/requests");
    const requests = log.body.requests as { path: string; status: number; fault: string | null }[];
    // The reset emptied the log, so it starts at the first request after it.
    expect(requests.map((r) => [r.status, r.fault])).toEqual([
      [200, null],
      [503, "scripted"],
      [200, null],
      [200, null],
    ]);
    expect(requests.every((r) => r.path === VERSIONS)).toBe(true);
    await call(h, "DELETE", "/_mock/requests");
    expect((await call(h, "GET", "/_mock/requests")).body.requests).toEqual([]);
  });

  it("refuses bad control input with 400 and changes nothing", async () => {
    const before = h.homeserver.control.faults();
    const tooLikely = await call(h, "PUT", "/_mock/faults", {
      body: { drop_rate: 0.7, server_error_rate: 0.7 },
    });
    expect(tooLikely.status).toBe(400);
    expect(tooLikely.body.errcode).toBe("M_INVALID_PARAM");
    const unknownKey = await call(h, "PUT", "/_mock/faults", { body: { dorp_rate: 1 } });
    expect(unknownKey.body.errcode).toBe("M_BAD_JSON");
    const notJson = await call(h, "POST", "/_mock/failures", { body: "nope" });
    expect(notJson.body.errcode).toBe("M_NOT_JSON");
    const noPath = await call(h, "POST", "/_mock/failures", { body: { status: 500 } });
    expect(noPath.body.errcode).toBe("M_MISSING_PARAM");
    expect(h.homeserver.control.faults()).toEqual(before);
    expect(h.homeserver.control.scriptedFailures()).toEqual([]);
  });

  it("creates users through /_mock/users for quick test setup", async () => {
    const res = await call(h, "POST", "/_mock/users", { body: { localpart: "quick", device_id: "QDEV" } });
    expect(res.body).toMatchObject({ user_id: "@quick:localhost", device_id: "QDEV" });
    const who = await call(h, "GET", "/_matrix/client/v3/account/whoami", {
      token: res.body.access_token as string,
    });
    expect(who.body.device_id).toBe("QDEV");
    const again = await call(h, "POST", "/_mock/users", { body: { localpart: "quick" } });
    expect(again.body.errcode).toBe("M_USER_IN_USE");
  });
});

describe("latency and the request log", () => {
  it("delays each request by the configured latency on the injected clock", async () => {
    const clock = new ManualClock(1_000);
    const hs = createMockHomeserver({ clock });
    hs.control.setFaults({ latencyMs: 300 });
    let settled = false;
    const pending = hs.fetch(VERSIONS).then((r) => {
      settled = true;
      return r;
    });
    await clock.advance(299);
    expect(settled).toBe(false);
    await clock.advance(1);
    expect((await pending).status).toBe(200);
    expect(hs.control.requestLog()[0]).toMatchObject({ startedAt: 1_000, endedAt: 1_300 });
  });

  it("records overlapping requests' start and end order", async () => {
    const clock = new ManualClock(0);
    const hs = createMockHomeserver({ clock });
    hs.control.setFaults({ latencyMs: 100 });
    const a = hs.fetch(VERSIONS);
    await clock.advance(50);
    const b = hs.fetch("/_matrix/client/v3/nonsense");
    await clock.advance(100);
    await Promise.all([a, b]);
    const [first, second] = hs.control.requestLog();
    expect(first).toMatchObject({
      seq: 1,
      status: 200,
      startOrder: 1,
      endOrder: 3,
      startedAt: 0,
      endedAt: 100,
    });
    expect(second).toMatchObject({
      seq: 2,
      status: 404,
      errcode: "M_UNRECOGNIZED",
      startOrder: 2,
      endOrder: 4,
    });
    expect(second?.startedAt).toBe(50);
    expect(second?.endedAt).toBe(150);
  });

  it("delays a request over a socket by the latency, on the server's clock", async () => {
    const clock = new ManualClock(0);
    const running = await startMockServer({ clock });
    try {
      running.homeserver.control.setFaults({ latencyMs: 80 });
      const pending = fetch(`${running.url}${VERSIONS}`);
      await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1), { interval: 1 });

      await clock.advance(79);
      expect(clock.pendingSleeps).toBe(1);
      expect(running.homeserver.control.requestLog()).toMatchObject([{ status: null, endedAt: null }]);
      await clock.advance(1);

      expect((await pending).status).toBe(200);
      expect(running.homeserver.control.requestLog()).toMatchObject([
        { status: 200, startedAt: 0, endedAt: 80 },
      ]);
    } finally {
      await running.close();
    }
  });

  it("aborts a delayed in-process request when the caller's signal fires", async () => {
    const clock = new ManualClock(0);
    const hs = createMockHomeserver({ clock });
    hs.control.setFaults({ latencyMs: 1_000 });
    const ac = new AbortController();
    const pending = hs.fetch(VERSIONS, { signal: ac.signal });
    await clock.advance(10);
    ac.abort(new DOMException("gave up", "AbortError"));
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
    expect(hs.control.requestLog()[0]).toMatchObject({ dropped: true, status: null });
  });
});
