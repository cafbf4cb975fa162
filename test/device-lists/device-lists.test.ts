import { initAsync } from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { isSdkError, SdkError } from "../../src/errors/sdk-error.js";
import { apiError, deferred } from "../crypto/support/fake-matrix-http.js";
import { deviceListsOver, settle } from "./support/fakes.js";

/**
 * `DeviceLists` over fakes and a `ManualClock`: coalescing, the rate limit, the server backoff,
 * MSC2638 and its honesty rule, `ensureFresh`'s bound, and each detector's wiring. Requests are
 * counted; nothing waits in real time.
 */

beforeAll(async () => {
  await initAsync();
});

const BOB = "@bob:home.example";
const DAVE = "@dave:remote.example";
const ERIN = "@erin:remote.example";
const FRED = "@fred:remote.example";

/** A to-device message from `userId`'s device with Curve25519 key `key`, as the crypto layer decrypted it. */
function fromDevice(userId: string, key: string, deviceId?: string) {
  return [{ kind: "decrypted", sender: { userId, deviceId, curve25519Key: key } }] as const;
}

const opened: { close: () => Promise<void> }[] = [];
function open(options: Parameters<typeof deviceListsOver>[0] = {}) {
  const setup = deviceListsOver(options);
  opened.push(setup);
  return setup;
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

describe("trust", () => {
  it("is unknown for a user never judged, and judged users are listed", async () => {
    const { lists } = open();
    expect(lists.trust(BOB)).toEqual({ state: "unknown", userId: BOB });
    expect(lists.trustAll()).toEqual([]);
    await lists.requestResync([BOB]);
    expect(lists.trustAll().map((t) => t.userId)).toEqual([BOB]);
  });

  it("rejects bad input with invalid_argument", async () => {
    const { lists } = open();
    for (const call of [
      () => lists.trust("bob"),
      () => lists.report("@bob", "x"),
      () => lists.report(BOB, 5 as never),
    ]) {
      expect(() => call()).toThrow(expect.objectContaining({ code: "invalid_argument" }));
    }
    for (const call of [
      () => lists.requestResync("@bob:home.example" as never),
      () => lists.requestResync([BOB, ""]),
      () => lists.ensureFresh([BOB], { timeoutMs: -1 }),
      // Node's timers fire a delay of 2^31 ms or more after 1 ms: refused, not a 1 ms wait.
      () => lists.ensureFresh([BOB], { timeoutMs: 2 ** 31 }),
      () => lists.ensureFresh([BOB], {} as never),
      () => lists.ensureFresh([BOB], { timeoutMs: 5, signal: { aborted: false } as never }),
      // The spec's 255-character limit, which crypto-wasm does not check.
      () => lists.requestResync([`@${"a".repeat(300)}:home.example`]),
    ]) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isSdkError(error) && error.code).toBe("invalid_argument");
    }
  });
});

describe("requestResync by re-query", () => {
  it("re-queries, then the user is fresh with cleared client_only", async () => {
    const { lists, loop, clock, events } = open();
    const [trust] = await lists.requestResync([BOB]);
    expect(trust).toEqual({ state: "fresh", userId: BOB, cleared: "client_only", refreshedAt: clock.now() });
    expect(loop.queries).toEqual([[BOB]]);
    expect(events.map((e) => e.trust.state)).toEqual(["refreshing", "fresh"]);
    expect(events[0]?.trust).toMatchObject({ via: "requery", reasons: [{ kind: "requested" }] });
  });

  it("coalesces: 1,000 concurrent asks for one user are one re-query", async () => {
    const { lists, loop } = open();
    const all = await Promise.all(Array.from({ length: 1000 }, () => lists.requestResync([BOB])));
    expect(loop.queries).toEqual([[BOB]]);
    expect(new Set(all.map((t) => JSON.stringify(t))).size).toBe(1);
  });

  it("re-queries many users in ⌈n/250⌉ key queries", async () => {
    const { lists, loop } = open();
    const users = Array.from({ length: 1000 }, (_, i) => `@u${i}:home.example`);
    const trusts = await lists.requestResync(users);
    expect(loop.queries).toHaveLength(4);
    expect(trusts.every((t) => t.state === "fresh")).toBe(true);
  });

  it("rate-limits per user: asks in the window resolve with the current trust, no request", async () => {
    const { lists, loop, clock } = open();
    const [first] = await lists.requestResync([BOB]);
    await clock.advance(9_999);
    const again = await Promise.all(Array.from({ length: 100 }, () => lists.requestResync([BOB])));
    expect(again.every((t) => JSON.stringify(t[0]) === JSON.stringify(first))).toBe(true);
    expect(loop.queries).toHaveLength(1);
    await clock.advance(1);
    await lists.requestResync([BOB]);
    expect(loop.queries).toHaveLength(2);
  });

  it("measures the rate window from when the resync ended, not when it started", async () => {
    const { lists, loop, clock } = open({ settings: { minResyncIntervalMs: 10_000 } });
    const gate = deferred();
    loop.gate = gate.promise;
    const first = lists.requestResync([BOB]);
    await clock.advance(30_000);
    loop.gate = undefined;
    gate.resolve();
    await first;
    expect(loop.queries).toHaveLength(1);
    // The resync took 30 s, longer than the window: the next ask still waits 10 s from its end.
    await lists.requestResync([BOB]);
    await clock.advance(9_999);
    await lists.requestResync([BOB]);
    expect(loop.queries).toHaveLength(1);
    await clock.advance(1);
    await lists.requestResync([BOB]);
    expect(loop.queries).toHaveLength(2);
  });

  it("a 1 MB note is cut to 200 characters in the trust and in every event", async () => {
    const { lists, events, clock } = open();
    const trust = lists.report(BOB, "y".repeat(1_000_000));
    await settle(clock);
    expect(trust).toMatchObject({ reasons: [{ kind: "reported", note: "y".repeat(200) }] });
    expect(events.length).toBeGreaterThan(0);
    expect(Math.max(...events.map((e) => JSON.stringify(e).length))).toBeLessThan(400);
  });

  it("a user found stale inside their window is resynced once it ends", async () => {
    const { lists, loop, clock } = open({ settings: { minResyncIntervalMs: 10_000 } });
    await lists.requestResync([BOB]);
    await clock.advance(3_000);
    for (let i = 0; i < 50; i++) lists.report(BOB, "they say they have a tablet");
    expect(lists.trust(BOB)).toMatchObject({ state: "stale", reasons: [{ kind: "reported" }] });
    await settle(clock);
    expect(loop.queries).toHaveLength(1);
    await clock.advance(7_000);
    await settle(clock);
    expect(loop.queries).toHaveLength(2);
    expect(lists.trust(BOB)).toMatchObject({ state: "fresh" });
  });

  it("this client's homeserver failing the query: failed on its own server, backed off", async () => {
    const { lists, loop, clock } = open();
    loop.homeserverDown = true;
    const [trust] = await lists.requestResync([BOB]);
    expect(trust).toMatchObject({
      state: "failed",
      server: "home.example",
      nextRetryAt: clock.now() + 15_000,
      error: { code: "key_query_failed" },
    });
    loop.homeserverDown = false;
    await clock.advance(15_000);
    await settle(clock);
    expect(lists.trust(BOB)).toMatchObject({ state: "fresh", cleared: "client_only" });
  });

  it("this client's homeserver answering 429: nothing sent before its retry_after_ms, capped at the backoff's cap", async () => {
    const { lists, loop, clock } = open();
    const limited = (ms: number) =>
      apiError("POST", "/_matrix/client/v3/keys/query", 429, { errcode: "M_LIMIT_EXCEEDED" }, ms);
    loop.homeserverDown = true;
    loop.failWith = limited(120_000);
    const [trust] = await lists.requestResync([BOB]);
    expect(trust).toMatchObject({
      state: "failed",
      server: "home.example",
      nextRetryAt: clock.now() + 120_000,
    });
    loop.homeserverDown = false;
    await clock.advance(119_999);
    expect(loop.queries).toHaveLength(1);
    await clock.advance(1);
    expect(loop.queries).toHaveLength(2);
    expect(lists.trust(BOB)).toMatchObject({ state: "fresh" });

    loop.homeserverDown = true;
    loop.failWith = limited(10 * 60 * 60_000);
    await clock.advance(10_000);
    const [again] = await lists.requestResync([BOB]);
    expect(again).toMatchObject({ state: "failed", nextRetryAt: clock.now() + 15 * 60_000 });
  });
});

describe("the per-server backoff", () => {
  it("fails every user of an unreachable server at once, asks nothing before nextRetryAt, and recovers", async () => {
    const { lists, loop, clock } = open();
    loop.unreachable.add("remote.example");
    const start = clock.now();
    const trusts = await lists.requestResync([DAVE, ERIN, BOB]);
    expect(trusts.map((t) => t.state)).toEqual(["failed", "failed", "fresh"]);
    expect(trusts[0]).toMatchObject({
      server: "remote.example",
      nextRetryAt: start + 15_000,
      reasons: [{ kind: "requested" }, { kind: "key_query_failed", server: "remote.example" }],
      error: { code: "server_unreachable", details: { server: "remote.example" } },
    });
    expect(loop.queries).toHaveLength(1);

    // Asked again before nextRetryAt (the rate window is over): no request.
    await clock.advance(14_000);
    const meanwhile = await lists.requestResync([DAVE]);
    expect(meanwhile[0]).toMatchObject({ state: "failed", nextRetryAt: start + 15_000 });
    expect(loop.queries).toHaveLength(1);

    // Retried by itself at nextRetryAt: still down → 30 s, then 60 s.
    const waits: number[] = [];
    for (let i = 0; i < 2; i++) {
      const before = (lists.trust(DAVE) as { nextRetryAt: number }).nextRetryAt;
      await clock.advance(before - clock.now());
      await settle(clock);
      const after = lists.trust(DAVE) as { nextRetryAt: number };
      waits.push(after.nextRetryAt - clock.now());
    }
    expect(waits).toEqual([30_000, 60_000]);
    // One query per retry, for both users together.
    expect(loop.queries.slice(1)).toEqual([
      [DAVE, ERIN],
      [DAVE, ERIN],
    ]);

    loop.unreachable.delete("remote.example");
    await clock.advance(60_000);
    await settle(clock);
    expect(lists.trust(DAVE)).toMatchObject({ state: "fresh", cleared: "client_only" });
    expect(lists.trust(ERIN)).toMatchObject({ state: "fresh" });
    // Back to the base wait for the next outage.
    loop.unreachable.add("remote.example");
    await clock.advance(10_000);
    const [again] = await lists.requestResync([DAVE]);
    expect(again).toMatchObject({ state: "failed", nextRetryAt: clock.now() + 15_000 });
  });

  it("caps the wait at 15 minutes", async () => {
    const { lists, loop, clock } = open();
    loop.unreachable.add("remote.example");
    await lists.requestResync([DAVE]);
    const waits: number[] = [];
    for (let i = 0; i < 9; i++) {
      const trust = lists.trust(DAVE) as { nextRetryAt: number };
      await clock.advance(trust.nextRetryAt - clock.now());
      await settle(clock);
      waits.push((lists.trust(DAVE) as { nextRetryAt: number }).nextRetryAt - clock.now());
    }
    expect(waits).toEqual([30, 60, 120, 240, 480, 900, 900, 900, 900].map((s) => s * 1000));
  });

  it("a retry that crypto-wasm holds back (its own failures cache) still counts against the user's server", async () => {
    const { lists, loop, clock } = open();
    loop.unreachable.add("remote.example");
    await lists.requestResync([DAVE]);
    loop.heldBack.add("remote.example");
    await clock.advance(15_000);
    await settle(clock);
    // Nothing was sent, and the failure stays the remote server's, not this client's homeserver's.
    expect(loop.queries).toHaveLength(1);
    expect(lists.trust(DAVE)).toMatchObject({
      state: "failed",
      server: "remote.example",
      nextRetryAt: clock.now() + 30_000,
    });
    loop.heldBack.clear();
    loop.unreachable.clear();
    await clock.advance(30_000);
    await settle(clock);
    expect(lists.trust(DAVE)).toMatchObject({ state: "fresh" });
  });

  it("(c) a failure in a query the crypto layer sent on its own fails the user and schedules the retry", async () => {
    const { lists, loop, machine, clock } = open();
    loop.unreachable.add("remote.example");
    machine.dirty.add(DAVE);
    await loop.run();
    expect(lists.trust(DAVE)).toMatchObject({
      state: "failed",
      reasons: [{ kind: "key_query_failed", server: "remote.example" }],
      nextRetryAt: clock.now() + 15_000,
    });
    loop.unreachable.clear();
    await clock.advance(15_000);
    await settle(clock);
    expect(lists.trust(DAVE)).toMatchObject({ state: "fresh" });
  });
});

describe("MSC2638", () => {
  it("asks the server to refresh a remote user; fresh server_and_client only once the list arrived", async () => {
    const { lists, refreshes, clock } = open({ msc2638: true });
    const pending = lists.requestResync([DAVE]);
    await settle(clock);
    expect(refreshes).toEqual([DAVE]);
    expect(lists.trust(DAVE)).toMatchObject({ state: "refreshing", via: "msc2638" });
    // A query before the announcement holds the server's old copy: still refreshing.
    lists.keysQueried([DAVE], []);
    await settle(clock);
    expect(lists.trust(DAVE)).toMatchObject({ state: "refreshing", via: "msc2638" });
    lists.deviceListsChanged([DAVE]);
    lists.keysQueried([DAVE], []);
    const [trust] = await pending;
    expect(trust).toEqual({
      state: "fresh",
      userId: DAVE,
      cleared: "server_and_client",
      refreshedAt: clock.now(),
    });
  });

  it("accepted but never relayed: re-queries after refreshArrivalTimeoutMs, and says client_only", async () => {
    const { lists, refreshes, loop, clock } = open({
      msc2638: true,
      settings: { refreshArrivalTimeoutMs: 20_000 },
    });
    const pending = lists.requestResync([DAVE]);
    await settle(clock);
    expect(refreshes).toHaveLength(1);
    await clock.advance(19_999);
    expect(loop.queries).toHaveLength(0);
    await clock.advance(1);
    const [trust] = await pending;
    expect(trust).toMatchObject({ state: "fresh", cleared: "client_only" });
    expect(loop.queries).toEqual([[DAVE]]);
  });

  it("accepted but never relayed, for 1,000 users: one deadline, then ⌈1000/250⌉ key queries", async () => {
    const { lists, refreshes, loop, clock } = open({
      msc2638: true,
      settings: { refreshArrivalTimeoutMs: 20_000 },
    });
    const users = Array.from({ length: 1000 }, (_, i) => `@u${i}:remote.example`);
    const pending = lists.requestResync(users);
    await settle(clock);
    expect(refreshes).toHaveLength(1000);
    await clock.advance(19_999);
    expect(loop.queries).toEqual([]);
    await clock.advance(1);
    const trusts = await pending;
    expect(loop.queries).toHaveLength(4);
    expect(new Set(loop.queries.flat()).size).toBe(1000);
    expect(trusts.every((t) => t.state === "fresh" && t.cleared === "client_only")).toBe(true);
  });

  it("1,000 separate asks whose refreshes were never relayed are re-queried in ⌈1000/250⌉ + 1 key queries", async () => {
    const { lists, refreshes, loop, clock } = open({
      msc2638: true,
      settings: { refreshArrivalTimeoutMs: 20_000 },
    });
    const users = Array.from({ length: 1000 }, (_, i) => `@u${i}:remote.example`);
    const pending = Promise.all(users.map((u) => lists.requestResync([u])));
    await settle(clock);
    expect(refreshes).toHaveLength(1000);
    // The first re-query is in flight while the other deadlines pass: they go out together after it.
    const gate = deferred();
    loop.gate = gate.promise;
    await clock.advance(20_000);
    loop.gate = undefined;
    gate.resolve();
    const trusts = await pending;
    expect(loop.queries).toHaveLength(Math.ceil(1000 / 250) + 1);
    expect(new Set(loop.queries.flat()).size).toBe(1000);
    expect(trusts.every(([t]) => t?.state === "fresh" && t.cleared === "client_only")).toBe(true);
  });

  it("the server's own fetch failing shows in failures: failed, backed off", async () => {
    const { lists, clock } = open({ msc2638: true });
    const pending = lists.requestResync([DAVE]);
    await settle(clock);
    lists.keysQueried([DAVE], ["remote.example"]);
    const [trust] = await pending;
    expect(trust).toMatchObject({
      state: "failed",
      server: "remote.example",
      nextRetryAt: clock.now() + 15_000,
    });
  });

  it("is only for remote users and never for a lost position alone: those are re-queried", async () => {
    const { lists, refreshes, loop, machine, clock } = open({ msc2638: true });
    machine.tracked.add(ERIN);
    await lists.requestResync([BOB]);
    lists.positionLost();
    await settle(clock);
    await settle(clock);
    expect(refreshes).toEqual([]);
    expect(loop.queries.flat()).toEqual([BOB, ERIN]);
    expect(lists.trust(ERIN)).toMatchObject({ state: "fresh", cleared: "client_only" });
  });

  it("404 M_UNRECOGNIZED on both paths: unsupported for the session, re-queried instead", async () => {
    const { lists, http, loop, clock } = open({
      msc2638: true,
      refresh: (userId) => {
        throw apiError("POST", userId, 404, { errcode: "M_UNRECOGNIZED" });
      },
    });
    const [dave] = await lists.requestResync([DAVE]);
    expect(dave).toMatchObject({ state: "fresh", cleared: "client_only" });
    expect(http.callsTo("POST", /refresh$/)).toHaveLength(2);
    await clock.advance(10_000);
    await lists.requestResync([DAVE, ERIN]);
    expect(http.callsTo("POST", /refresh$/)).toHaveLength(2);
    expect(loop.queries.map((q) => q.sort())).toEqual([[DAVE], [DAVE, ERIN]]);
  });

  it("429 waits retry_after_ms on the clock, then asks again", async () => {
    let calls = 0;
    const { lists, refreshes, clock } = open({
      msc2638: true,
      refresh: (userId) => {
        calls++;
        if (calls === 1) throw apiError("POST", userId, 429, { errcode: "M_LIMIT_EXCEEDED" }, 4_000);
        return {};
      },
    });
    const pending = lists.requestResync([DAVE]);
    await settle(clock);
    expect(refreshes).toHaveLength(1);
    await clock.advance(3_999);
    expect(refreshes).toHaveLength(1);
    await clock.advance(1);
    expect(refreshes).toHaveLength(2);
    lists.deviceListsChanged([DAVE]);
    lists.keysQueried([DAVE], []);
    expect((await pending)[0]).toMatchObject({ state: "fresh", cleared: "server_and_client" });
  });

  it("10,000 asks for 100 users in one window send 100 refreshes", async () => {
    const { lists, refreshes, clock } = open({ msc2638: true });
    const users = Array.from({ length: 100 }, (_, i) => `@u${i}:remote.example`);
    const asks = Array.from({ length: 10_000 }, (_, i) => lists.requestResync([users[i % 100] as string]));
    await settle(clock);
    lists.deviceListsChanged(users);
    lists.keysQueried(users, []);
    const trusts = await Promise.all(asks);
    expect(refreshes).toHaveLength(100);
    expect(new Set(refreshes).size).toBe(100);
    expect(trusts.every(([t]) => t?.state === "fresh" && t.cleared === "server_and_client")).toBe(true);
  });
});

describe("MSC2638: server_and_client rests on a query sent after the announcement", () => {
  it("a change announced while the refresh was being asked for is some other change", async () => {
    const accepted = deferred<unknown>();
    const { lists, refreshes, clock } = open({ msc2638: true, refresh: () => accepted.promise });
    const pending = lists.requestResync([DAVE]);
    await settle(clock);
    expect(refreshes).toEqual([DAVE]);
    lists.deviceListsChanged([DAVE]);
    accepted.resolve({});
    await settle(clock);
    lists.keysQueried([DAVE], []);
    await settle(clock);
    expect(lists.trust(DAVE)).toMatchObject({ state: "refreshing", via: "msc2638" });
    // The announcement after the 202, then a query: the refreshed list.
    lists.deviceListsChanged([DAVE]);
    lists.keysQueried([DAVE], []);
    expect((await pending)[0]).toMatchObject({ state: "fresh", cleared: "server_and_client" });
  });

  it("a keys/query already in flight at the announcement does not count; the one sent after it does", async () => {
    const { lists, loop, machine, clock } = open({ msc2638: true });
    const pending = lists.requestResync([DAVE]);
    await settle(clock);
    // The crypto layer's own query for Dave is in flight, answered from the server's old copy.
    const first = deferred();
    loop.gate = first.promise;
    machine.dirty.add(DAVE);
    void loop.run();
    await settle(clock);
    expect(loop.queries).toEqual([[DAVE]]);
    // Sync announces the refreshed list; the machine marks Dave due again.
    machine.dirty.add(DAVE);
    lists.deviceListsChanged([DAVE]);
    const second = deferred();
    loop.gate = second.promise;
    first.resolve();
    await settle(clock);
    expect(lists.trust(DAVE)).toMatchObject({ state: "refreshing", via: "msc2638" });
    expect(loop.queries).toEqual([[DAVE], [DAVE]]);
    second.resolve();
    expect((await pending)[0]).toMatchObject({ state: "fresh", cleared: "server_and_client" });
  });

  it("a query in flight at the announcement that left nobody due was already the refreshed one", async () => {
    const { lists, loop, machine, clock } = open({ msc2638: true });
    const pending = lists.requestResync([DAVE]);
    await settle(clock);
    const gate = deferred();
    loop.gate = gate.promise;
    machine.dirty.add(DAVE);
    void loop.run();
    await settle(clock);
    // The machine took the announcement before it made this query: Dave is not due again.
    lists.deviceListsChanged([DAVE]);
    loop.gate = undefined;
    gate.resolve();
    expect((await pending)[0]).toMatchObject({ state: "fresh", cleared: "server_and_client" });
    expect(loop.queries).toEqual([[DAVE]]);
  });

  it("a 429 is waited out once for the whole batch: N users cost N + 1 refreshes, not 2N", async () => {
    let limitedUntil = 0;
    const setup = open({
      msc2638: true,
      refresh: (userId) => {
        const left = limitedUntil - setup.clock.now();
        if (left > 0) throw apiError("POST", userId, 429, { errcode: "M_LIMIT_EXCEEDED" }, left);
        return {};
      },
    });
    const { lists, refreshes, clock } = setup;
    const users = [DAVE, ERIN, FRED];
    limitedUntil = clock.now() + 4_000;
    const pending = lists.requestResync(users);
    await clock.advance(3_999);
    expect(refreshes).toEqual([DAVE]);
    await clock.advance(1);
    lists.deviceListsChanged(users);
    lists.keysQueried(users, []);
    const trusts = await pending;
    expect(refreshes).toHaveLength(users.length + 1);
    expect(trusts.every((t) => t.state === "fresh" && t.cleared === "server_and_client")).toBe(true);
  });
});

describe("evidence found while a resync runs", () => {
  it("a message from an unknown device while the re-query is in flight is judged again after it", async () => {
    const { lists, machine, loop, clock } = open();
    machine.tracked.add(BOB);
    machine.devices.set(BOB, [{ deviceId: "BOB1", curve25519Key: "curveA" }]);
    const gate = deferred();
    loop.gate = gate.promise;
    lists.report(BOB);
    await settle(clock);
    expect(loop.queries).toEqual([[BOB]]);
    lists.toDeviceReceived(fromDevice(BOB, "curveZ"));
    await settle(clock);
    loop.gate = undefined;
    gate.resolve();
    await settle(clock);
    // The resync's query went out before the message: the list it brought still lacks the
    // device, so the list is stale again, and resynced once the rate window is over.
    expect(lists.trust(BOB)).toMatchObject({
      state: "stale",
      reasons: [{ kind: "unknown_device", senderKey: "curveZ" }],
    });
    await clock.advance(10_000);
    expect(loop.queries).toEqual([[BOB], [BOB]]);
    expect(lists.trust(BOB).state).toBe("fresh");
    // Handled now: the same evidence never triggers again.
    await clock.advance(60_000);
    lists.toDeviceReceived(fromDevice(BOB, "curveZ"));
    await settle(clock);
    expect(loop.queries).toHaveLength(2);
  });

  it("during the MSC2638 wait, evidence seen after the arrival's query went out is judged again", async () => {
    const { lists, machine, loop, refreshes, clock } = open({ msc2638: true });
    machine.tracked.add(DAVE);
    machine.devices.set(DAVE, [{ deviceId: "DAVE1", curve25519Key: "curveA" }]);
    const pending = lists.requestResync([DAVE]);
    await settle(clock);
    lists.deviceListsChanged([DAVE]);
    const gate = deferred();
    loop.gate = gate.promise;
    machine.dirty.add(DAVE);
    void loop.run();
    await settle(clock);
    lists.toDeviceReceived(fromDevice(DAVE, "curveZ"));
    await settle(clock);
    loop.gate = undefined;
    gate.resolve();
    expect((await pending)[0]).toMatchObject({ state: "fresh", cleared: "server_and_client" });
    await settle(clock);
    expect(lists.trust(DAVE)).toMatchObject({ state: "stale", reasons: [{ kind: "unknown_device" }] });
    await clock.advance(10_000);
    expect(refreshes).toEqual([DAVE, DAVE]);
  });

  it("evidence seen before the resync's query went out is answered by it: no second resync", async () => {
    const { lists, machine, loop, refreshes, clock } = open({ msc2638: true });
    machine.tracked.add(DAVE);
    machine.devices.set(DAVE, [{ deviceId: "DAVE1", curve25519Key: "curveA" }]);
    const pending = lists.requestResync([DAVE]);
    await settle(clock);
    lists.toDeviceReceived(fromDevice(DAVE, "curveB", "DAVE2"));
    await settle(clock);
    // The refreshed list arrives, still without that device (its keys were never published).
    lists.deviceListsChanged([DAVE]);
    lists.keysQueried([DAVE], []);
    expect((await pending)[0]).toMatchObject({ state: "fresh", cleared: "server_and_client" });
    await clock.advance(60_000);
    lists.toDeviceReceived(fromDevice(DAVE, "curveB", "DAVE2"));
    await settle(clock);
    expect(refreshes).toEqual([DAVE]);
    expect(loop.queries).toEqual([]);
    expect(lists.trust(DAVE).state).toBe("fresh");
  });
});

describe("users who left", () => {
  it("a user in device_lists.left is forgotten: unknown again, and their evidence with them", async () => {
    const { lists, machine, loop, clock, events } = open();
    machine.tracked.add(BOB);
    machine.identities.add(BOB);
    machine.devices.set(BOB, [{ deviceId: "OLD", curve25519Key: "a", signed: false }]);
    lists.keysQueried([BOB], []);
    await settle(clock);
    expect(loop.queries).toEqual([[BOB]]);
    expect(lists.trust(BOB).state).toBe("fresh");
    lists.deviceListsChanged([], [BOB]);
    expect(lists.trust(BOB)).toEqual({ state: "unknown", userId: BOB });
    expect(lists.trustAll()).toEqual([]);
    expect(events.at(-1)).toEqual({ userId: BOB, trust: { state: "unknown", userId: BOB } });
    // Sharing a room again, the same evidence is new evidence (once).
    await clock.advance(60_000);
    lists.keysQueried([BOB], []);
    await settle(clock);
    expect(loop.queries).toHaveLength(2);
  });

  it("a user who left while their resync runs is forgotten once it is over", async () => {
    const { lists, loop, clock } = open();
    const gate = deferred();
    loop.gate = gate.promise;
    const pending = lists.requestResync([BOB]);
    await settle(clock);
    lists.deviceListsChanged([], [BOB]);
    expect(lists.trust(BOB).state).toBe("refreshing");
    gate.resolve();
    await pending;
    await settle(clock);
    expect(lists.trust(BOB)).toEqual({ state: "unknown", userId: BOB });
  });
});

describe("ensureFresh", () => {
  it("resyncs only stale users, waits at most timeoutMs on the clock and never throws for a slow server", async () => {
    const { lists, refreshes, clock } = open({ msc2638: true });
    lists.report(DAVE, "new phone");
    await settle(clock);
    lists.report(DAVE);
    let done: unknown;
    void lists.ensureFresh([DAVE, BOB], { timeoutMs: 5_000 }).then((t) => {
      done = t;
    });
    await clock.advance(4_999);
    expect(done).toBeUndefined();
    await clock.advance(1);
    expect(done).toEqual([
      expect.objectContaining({ userId: DAVE, state: "refreshing", via: "msc2638" }),
      { state: "unknown", userId: BOB },
    ]);
    expect(refreshes).toEqual([DAVE]);
  });

  it("waits for one resync once: later calls share the first call's wait, then return at once", async () => {
    // The server takes the refresh and never relays it (the arrival waits 30 s).
    const { lists, refreshes, clock } = open({ msc2638: true });
    lists.report(DAVE);
    const ended: number[] = [];
    const ensure = () =>
      lists.ensureFresh([DAVE], { timeoutMs: 5_000 }).then(([t]) => {
        ended.push(clock.now());
        return t;
      });
    const start = clock.now();
    const first = ensure();
    await clock.advance(2_000);
    const second = ensure();
    await clock.advance(2_999);
    expect(ended).toEqual([]);
    await clock.advance(1);
    expect((await first)?.state).toBe("refreshing");
    expect((await second)?.state).toBe("refreshing");
    // Both ended when the first call's 5 s were over, not 5 s after the second began.
    expect(ended).toEqual([start + 5_000, start + 5_000]);
    // A send later during the same resync does not wait for it again.
    await clock.advance(1_000);
    expect((await ensure())?.state).toBe("refreshing");
    expect(ended.at(-1)).toBe(start + 6_000);
    expect(refreshes).toEqual([DAVE]);
    // A new resync gets a new wait.
    await clock.advance(24_000);
    await settle(clock);
    expect(lists.trust(DAVE)).toMatchObject({ state: "fresh", cleared: "client_only" });
    lists.report(DAVE);
    await clock.advance(10_000);
    await settle(clock);
    expect(refreshes).toEqual([DAVE, DAVE]);
    const later = clock.now();
    void ensure();
    await clock.advance(4_999);
    expect(ended).toHaveLength(3);
    await clock.advance(1);
    expect(ended.at(-1)).toBe(later + 5_000);
  });

  it("returns at once when nothing is stale, without a request", async () => {
    const { lists, loop } = open();
    expect(await lists.ensureFresh([BOB], { timeoutMs: 5_000 })).toEqual([{ state: "unknown", userId: BOB }]);
    expect(loop.queries).toEqual([]);
  });

  it("returns when the caller aborts", async () => {
    const { lists, clock } = open({ msc2638: true });
    lists.report(DAVE);
    const abort = new AbortController();
    const pending = lists.ensureFresh([DAVE], { timeoutMs: 60_000, signal: abort.signal });
    await settle(clock);
    abort.abort();
    expect((await pending)[0]?.state).toBe("refreshing");
  });
});

describe("detectors, wired", () => {
  it("(a) a room key from a sender key the list lacks marks a tracked user stale and resyncs them", async () => {
    const { lists, machine, loop, clock } = open();
    machine.tracked.add(BOB);
    machine.devices.set(BOB, [{ deviceId: "BOB1", curve25519Key: "curveA" }]);
    lists.toDeviceReceived([
      { kind: "decrypted", sender: { userId: BOB, deviceId: undefined, curve25519Key: "curveZ" } },
    ]);
    await settle(clock);
    expect(loop.queries).toEqual([[BOB]]);
    // The same evidence again (the device is still unknown after the resync): nothing more.
    await clock.advance(60_000);
    lists.toDeviceReceived([
      { kind: "decrypted", sender: { userId: BOB, deviceId: undefined, curve25519Key: "curveZ" } },
    ]);
    await settle(clock);
    expect(loop.queries).toEqual([[BOB]]);
  });

  it("(a) a sender the machine does not track is no evidence", async () => {
    const { lists, loop, clock } = open();
    lists.roomEventDecrypted(
      { sender: "@stranger:else.example", content: { device_id: "X", sender_key: "k" } },
      { ok: false, reason: "unknown_sender_device" },
    );
    await settle(clock);
    expect(loop.queries).toEqual([]);
    expect(lists.trust("@stranger:else.example").state).toBe("unknown");
  });

  it("(b) an unsigned device of a cross-signed user resyncs once per evidence", async () => {
    const { lists, machine, loop, clock } = open();
    machine.identities.add(BOB);
    machine.devices.set(BOB, [
      { deviceId: "BOB1", curve25519Key: "a", signed: true },
      { deviceId: "OLD", curve25519Key: "b", signed: false },
    ]);
    lists.keysQueried([BOB], []);
    await settle(clock);
    expect(loop.queries).toEqual([[BOB]]);
    for (let i = 0; i < 5; i++) {
      await clock.advance(60_000);
      lists.keysQueried([BOB], []);
      await settle(clock);
    }
    expect(loop.queries).toHaveLength(1);
    machine.devices.get(BOB)?.push({ deviceId: "NEW", curve25519Key: "c", signed: false });
    lists.keysQueried([BOB], []);
    await settle(clock);
    expect(loop.queries).toHaveLength(2);
  });

  it("(b) fires once for a user with more unsigned devices than any cap", async () => {
    const { lists, machine, loop, clock } = open();
    machine.identities.add(BOB);
    machine.devices.set(
      BOB,
      Array.from({ length: 100 }, (_, i) => ({ deviceId: `OLD${i}`, curve25519Key: `k${i}`, signed: false })),
    );
    lists.keysQueried([BOB], []);
    await settle(clock);
    expect(loop.queries).toEqual([[BOB]]);
    for (let i = 0; i < 5; i++) {
      await clock.advance(60_000);
      lists.keysQueried([BOB], []);
      await settle(clock);
    }
    expect(loop.queries).toHaveLength(1);
    machine.devices.get(BOB)?.push({ deviceId: "NEW", curve25519Key: "c", signed: false });
    lists.keysQueried([BOB], []);
    await settle(clock);
    expect(loop.queries).toHaveLength(2);
  });

  it("(d) a query sent before the loss does not clear it; the re-query after it does", async () => {
    const { lists, machine, loop, clock } = open();
    machine.tracked.add(BOB);
    // Resynced just now: the resync the loss asks for waits for the rate window.
    await lists.requestResync([BOB]);
    const gate = deferred();
    loop.gate = gate.promise;
    machine.dirty.add(BOB);
    void loop.run();
    await settle(clock);
    // The position is lost while that query is in flight; the sync layer marks everyone dirty.
    machine.dirty.add(BOB);
    lists.positionLost();
    await settle(clock);
    expect(lists.trust(BOB)).toMatchObject({ state: "stale", reasons: [{ kind: "position_lost" }] });
    loop.gate = undefined;
    gate.resolve();
    await settle(clock);
    expect(lists.trust(BOB)).toMatchObject({ state: "stale", reasons: [{ kind: "position_lost" }] });
    await loop.run();
    await settle(clock);
    expect(loop.queries).toEqual([[BOB], [BOB], [BOB]]);
    expect(lists.trust(BOB)).toMatchObject({ state: "fresh", cleared: "client_only" });
  });

  it("(d) a lost position makes every tracked user stale until re-queried", async () => {
    const { lists, machine, loop, clock, events } = open();
    machine.tracked.add(BOB);
    machine.tracked.add(DAVE);
    // The sync layer marks every tracked user dirty before it reports the loss; its re-query is
    // the one the resync waits for, not a second one.
    machine.dirty.add(BOB);
    machine.dirty.add(DAVE);
    lists.positionLost();
    await settle(clock);
    await settle(clock);
    expect(
      events
        .filter((e) => e.trust.state === "stale")
        .map((e) => e.userId)
        .sort(),
    ).toEqual([BOB, DAVE]);
    expect(loop.queries).toEqual([[BOB, DAVE]]);
    expect(lists.trust(BOB)).toMatchObject({ state: "fresh", cleared: "client_only" });
  });

  it("(e) a report resyncs and returns the trust right after", async () => {
    const { lists, loop, clock } = open();
    const trust = lists.report(BOB, "they say they have a laptop");
    expect(trust).toMatchObject({
      state: "refreshing",
      reasons: [{ kind: "reported", note: "they say they have a laptop" }],
    });
    await settle(clock);
    expect(loop.queries).toEqual([[BOB]]);
  });
});

describe("closing", () => {
  it("a resync cut short by close() announces no failure of our own homeserver", async () => {
    const setup = deviceListsOver();
    const { lists, loop, clock, events } = setup;
    const gate = deferred();
    loop.gate = gate.promise;
    const pending = lists.requestResync([BOB]);
    await settle(clock);
    expect(lists.trust(BOB)).toMatchObject({ state: "refreshing" });
    // The client fires its signal first; the query cut short by it ends before close() is called.
    setup.abort();
    loop.homeserverDown = true;
    loop.failWith = new SdkError("client_closed", "the client is closed");
    gate.resolve();
    await pending;
    await settle(clock);
    await setup.close();
    expect(events.map((e) => e.trust.state)).toEqual(["refreshing"]);
  });
});
