import { describe, expect, it } from "vitest";
import { send } from "./routes/e2ee-test-users.js";
import { changedSince, federationWorlds, REMOTE, syncToken } from "./support/federation.js";

/**
 * MSC2638 `POST /user/{userId}/devices/refresh` over a real socket, with a `ManualClock`: 202 at
 * once, the resync afterwards, its result in `device_lists.changed`, failures in `keys/query`
 * while the server retries. Only the `msc` profile serves it.
 */

const start = federationWorlds();

const refreshPath = (userId: string) => `user/${encodeURIComponent(userId)}/devices/refresh`;

describe("MSC2638 device-list refresh", () => {
  it("answers 202 at once and repairs a stale copy after the delay, announced in device_lists.changed", async () => {
    const { hs, clock, alice, dave, newDaveDevice, aliceQueriesDave } = await start({
      profile: "msc",
      federation: { refreshDelayMs: 50 },
    });
    await aliceQueriesDave();
    hs.control.loseDeviceListUpdates(dave.userId, true);
    await newDaveDevice("D2");
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1"], failures: {} });
    expect(hs.control.remoteCache(dave.userId).stale).toBe(true);
    const token = await syncToken(alice);

    const res = await alice.call("POST", refreshPath(dave.userId), {});
    expect([res.status, res.body]).toEqual([202, {}]);
    expect(hs.control.remoteCache(dave.userId)).toMatchObject({
      stale: true,
      markedForResync: true,
      nextResync: { at: clock.now() + 50, reason: "refresh" },
    });
    await clock.advance(49);
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1"], failures: {} });

    await clock.advance(1);
    expect(hs.control.remoteCache(dave.userId)).toMatchObject({
      stale: false,
      markedForResync: false,
      lastResync: { ok: true, reason: "refresh" },
    });
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1", "D2"], failures: {} });
    expect(await changedSince(alice, token)).toEqual([dave.userId]);
    const logged = hs.control.requestLog().filter((e) => e.path.endsWith("/devices/refresh"));
    expect(logged.map((e) => [e.method, e.status, e.userId])).toEqual([["POST", 202, alice.userId]]);
  });

  it("announces the user after a refresh that found nothing new: the MSC relays the fetched list", async () => {
    const { clock, alice, dave, aliceQueriesDave } = await start({ profile: "msc" });
    await aliceQueriesDave();
    const token = await syncToken(alice);
    expect((await alice.call("POST", refreshPath(dave.userId), {})).status).toBe(202);
    await clock.advance(5);
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1"], failures: {} });
    expect(await changedSince(alice, token)).toEqual([dave.userId]);
  });

  it("wakes a waiting /sync long-poll when the resync changes the copy", async () => {
    const { hs, clock, alice, dave, newDaveDevice, aliceQueriesDave } = await start({ profile: "msc" });
    await aliceQueriesDave();
    hs.control.loseDeviceListUpdates(dave.userId, true);
    await newDaveDevice("D2");
    const token = await syncToken(alice);
    expect((await alice.call("POST", refreshPath(dave.userId), {})).status).toBe(202);

    const waiting = alice.call("GET", `sync?since=${encodeURIComponent(token)}&timeout=60000`);
    // Let the long-poll park on the clock (its sleep, next to the refresh's), then run the refresh.
    while (clock.pendingSleeps < 2) await new Promise((r) => setTimeout(r, 5));
    await clock.advance(5);
    const res = await waiting;
    expect((res.body.device_lists as { changed: string[] }).changed).toEqual([dave.userId]);
  });

  it("is served on the MSC's r0 path and both unstable paths", async () => {
    const { server, alice, dave } = await start({ profile: "msc", federation: { refreshRateLimitMs: 0 } });
    const user = encodeURIComponent(dave.userId);
    const paths: [string, string][] = [
      ["POST", `/_matrix/client/r0/user/${user}/devices/refresh`],
      ["POST", `/_matrix/client/unstable/org.matrix.msc2638/user/${user}/devices/refresh`],
      ["GET", `/_matrix/unstable/org.matrix.msc2638/user/${user}/devices`],
    ];
    for (const [method, path] of paths) {
      const res = await server.fetch(path, {
        method,
        headers: { authorization: `Bearer ${alice.accessToken}` },
      });
      expect([path, res.status]).toEqual([path, 202]);
    }
    const wrong = await send(server, "GET", refreshPath(dave.userId), { accessToken: alice.accessToken });
    expect([wrong.status, wrong.body.errcode]).toEqual([405, "M_UNRECOGNIZED"]);
  });

  it("is advertised as org.matrix.msc2638 by the msc profile only", async () => {
    const versions = async (profile: "msc" | "synapse-1.157") => {
      const { server } = await start({ profile });
      const body = (await (await server.fetch("/_matrix/client/versions")).json()) as {
        unstable_features: Record<string, boolean>;
      };
      return body.unstable_features["org.matrix.msc2638"];
    };
    expect(await versions("msc")).toBe(true);
    expect(await versions("synapse-1.157")).toBeUndefined();
  });

  it("is an unknown path, 404 M_UNRECOGNIZED, on every other profile and for every method", async () => {
    for (const profile of ["synapse-1.157", "synapse-1.156", "tuwunel", "continuwuity"] as const) {
      const { server, alice, dave } = await start({ profile });
      const user = encodeURIComponent(dave.userId);
      for (const [method, path] of [
        ["POST", `/_matrix/client/v3/user/${user}/devices/refresh`],
        ["GET", `/_matrix/client/v3/user/${user}/devices/refresh`],
        ["POST", `/_matrix/client/unstable/org.matrix.msc2638/user/${user}/devices/refresh`],
        ["GET", `/_matrix/unstable/org.matrix.msc2638/user/${user}/devices`],
      ] as const) {
        const res = await server.fetch(path, {
          method,
          headers: { authorization: `Bearer ${alice.accessToken}` },
        });
        const body = (await res.json()) as { errcode: string };
        expect([profile, method, path, res.status, body.errcode]).toEqual([
          profile,
          method,
          path,
          404,
          "M_UNRECOGNIZED",
        ]);
      }
    }
  });

  it("limits a caller to one refresh of the same user per window: 429 M_LIMIT_EXCEEDED with retry_after_ms", async () => {
    const { server, clock, alice, dave } = await start({
      profile: "msc",
      federation: { refreshRateLimitMs: 5_000 },
    });
    expect((await alice.call("POST", refreshPath(dave.userId), {})).status).toBe(202);
    await clock.advance(1_500);
    const res = await server.fetch(`/_matrix/client/v3/${refreshPath(dave.userId)}`, {
      method: "POST",
      headers: { authorization: `Bearer ${alice.accessToken}` },
    });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("4");
    expect(await res.json()).toEqual({
      errcode: "M_LIMIT_EXCEEDED",
      error: "Too Many Requests",
      retry_after_ms: 3_500,
    });
    // Another user, or another caller, is not limited by it.
    expect((await alice.call("POST", refreshPath(alice.userId), {})).status).toBe(202);
    expect((await dave.call("POST", refreshPath(dave.userId), {})).status).toBe(202);
    await clock.advance(3_500);
    expect((await alice.call("POST", refreshPath(dave.userId), {})).status).toBe(202);
  });

  it("refuses a malformed user id with 400 M_INVALID_PARAM", async () => {
    const { alice } = await start({ profile: "msc" });
    for (const userId of ["dave", "@dave", "not a user"]) {
      const res = await alice.call("POST", refreshPath(userId), {});
      expect([userId, res.status, res.body.errcode]).toEqual([userId, 400, "M_INVALID_PARAM"]);
    }
  });

  it("is a no-op success for a local user (their list is authoritative)", async () => {
    const { hs, clock, alice } = await start({ profile: "msc" });
    const token = await syncToken(alice);
    expect((await alice.call("POST", refreshPath(alice.userId), {})).status).toBe(202);
    await clock.advance(1_000);
    expect(await changedSince(alice, token)).toEqual([]);
    expect(() => hs.control.remoteCache(alice.userId)).toThrow(RangeError);
  });

  it("needs an access token", async () => {
    const { server, dave } = await start({ profile: "msc" });
    const res = await send(server, "POST", refreshPath(dave.userId), {});
    expect([res.status, res.body.errcode]).toEqual([401, "M_MISSING_TOKEN"]);
  });

  it("with the remote unreachable: 202, then failures in keys/query, retries with backoff, recovery", async () => {
    const { hs, clock, alice, dave, newDaveDevice, aliceQueriesDave } = await start({
      profile: "msc",
      federation: { refreshDelayMs: 10, resyncRetryMs: 1_000, resyncRetryMaxMs: 8_000 },
    });
    await aliceQueriesDave();
    hs.control.loseDeviceListUpdates(dave.userId, true);
    await newDaveDevice("D2");
    hs.control.setRemoteServerReachable(REMOTE, false);
    const token = await syncToken(alice);

    expect((await alice.call("POST", refreshPath(dave.userId), {})).status).toBe(202);
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1"], failures: {} });
    await clock.advance(10);
    // The cached copy is still served, with the failure beside it.
    const failure = { [REMOTE]: { status: 503, message: "Not ready for retry" } };
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1"], failures: failure });
    const failed = hs.control.remoteCache(dave.userId);
    expect(failed).toMatchObject({ failing: true, lastResync: { ok: false, reason: "refresh" } });
    expect(failed.nextResync).toEqual({ at: clock.now() + 1_000, reason: "retry" });

    await clock.advance(1_000);
    expect(hs.control.remoteCache(dave.userId)).toMatchObject({
      lastResync: { ok: false, reason: "retry" },
      nextResync: { at: clock.now() + 2_000, reason: "retry" },
    });
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1"], failures: failure });
    expect(await changedSince(alice, token)).toEqual([]);

    hs.control.setRemoteServerReachable(REMOTE, true);
    await clock.advance(1_000);
    expect(hs.control.remoteCache(dave.userId)).toMatchObject({
      stale: false,
      failing: false,
      nextResync: null,
      lastResync: { ok: true, reason: "retry" },
    });
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1", "D2"], failures: {} });
    expect(await changedSince(alice, token)).toEqual([dave.userId]);
  });
});
