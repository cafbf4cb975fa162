import { describe, expect, it } from "vitest";
import {
  keyQueries,
  knownDevices,
  roomKeyReached,
  staleRemoteDevice,
  untilKnown,
  useFederatedSetup,
  waitUntil,
} from "../device-lists/support/federation-fixtures.js";

/**
 * Signal (c) and the per-server backoff, over a real socket: Dave's server cannot be reached, so
 * `keys/query` lists it in `failures`; Dave's trust is `failed` with a `nextRetryAt`, nothing is
 * asked for him before then, the SDK retries by itself (the backoff doubling), and once the
 * server is back the list is repaired and the send reaches his new device. A short injected
 * backoff stands in for the 15 s default.
 */

const setup = useFederatedSetup();

/** A short backoff where nothing but the SDK holds retries back (MSC2638: the server keeps the list). */
const BACKOFF = { serverBackoff: { baseMs: 400, capMs: 3_000 }, minResyncIntervalMs: 0 };

describe("signal (c): keys/query failures for the user's server, and the backoff", () => {
  it("tuwunel: failed with nextRetryAt, nothing asked before it, then retried by itself and recovered", async () => {
    // The default schedule (15 s first): crypto-wasm itself leaves a failed server's users out of
    // every query for 15 s of wall-clock time (rust-sdk `FailuresCache`), so no shorter wait could
    // reach the server sooner on this path.
    const s = await setup.start("tuwunel");
    const { control, alice, dave, second, aliceClient, roomId, trust } = await staleRemoteDevice(s);
    control.setRemoteServerReachable("remote.example", false);

    const [failed] = await aliceClient.deviceLists.requestResync([dave.userId]);
    expect(failed).toMatchObject({
      state: "failed",
      server: "remote.example",
      reasons: expect.arrayContaining([{ kind: "key_query_failed", server: "remote.example" }]),
      error: { code: "server_unreachable", details: { server: "remote.example" } },
    });
    const { nextRetryAt } = failed as { nextRetryAt: number };
    expect(nextRetryAt - Date.now()).toBeGreaterThan(10_000);
    const asked = keyQueries(s.server, alice.userId).length;
    // Asked again and again while it backs off: answered from the trust, nothing sent.
    for (let i = 0; i < 20; i++) {
      const [again] = await aliceClient.deviceLists.requestResync([dave.userId]);
      expect(again).toMatchObject({ state: "failed", nextRetryAt });
    }
    expect(keyQueries(s.server, alice.userId).length).toBe(asked);

    control.setRemoteServerReachable("remote.example", true);
    await waitUntil(
      "recovered",
      async () => (await aliceClient.deviceLists.trust(dave.userId)).state === "fresh",
      40_000,
    );
    const retried = keyQueries(s.server, alice.userId).slice(asked);
    expect(retried.length).toBeGreaterThanOrEqual(1);
    expect(retried.every((q) => q.startedAt >= nextRetryAt)).toBe(true);
    expect(trust.of(dave.userId).at(-1)).toMatchObject({ state: "fresh", cleared: "client_only" });
    expect(await knownDevices(aliceClient, dave.userId)).toEqual([dave.deviceId, second.deviceId].sort());
    await aliceClient.rooms.send(roomId, "m.room.message", { msgtype: "m.text", body: "back online?" });
    expect(roomKeyReached(s.server, alice.userId, second)).toBe(true);
  });

  it("msc: the accepted refresh fails on the server's side, shows in failures, and recovers", async () => {
    const s = await setup.start("msc", { resyncRetryMs: 200, resyncRetryMaxMs: 1_000 });
    const { control, alice, dave, second, aliceClient, roomId, trust } = await staleRemoteDevice(s, {
      alice: { deviceLists: { ...BACKOFF, refreshArrivalTimeoutMs: 300 } },
    });
    control.setRemoteServerReachable("remote.example", false);

    await aliceClient.deviceLists.report(dave.userId, "Dave says he has a new phone");
    await waitUntil(
      "Dave's trust failed",
      async () => (await aliceClient.deviceLists.trust(dave.userId)).state === "failed",
    );
    expect(await aliceClient.deviceLists.trust(dave.userId)).toMatchObject({
      server: "remote.example",
      reasons: expect.arrayContaining([{ kind: "reported", note: "Dave says he has a new phone" }]),
    });
    expect(trust.of(dave.userId).some((t) => t.state === "refreshing" && t.via === "msc2638")).toBe(true);
    expect(await knownDevices(aliceClient, dave.userId)).toEqual([dave.deviceId]);

    control.setRemoteServerReachable("remote.example", true);
    await untilKnown(aliceClient, dave.userId, second.deviceId);
    await waitUntil(
      "recovered",
      async () => (await aliceClient.deviceLists.trust(dave.userId)).state === "fresh",
    );
    await aliceClient.rooms.send(roomId, "m.room.message", { msgtype: "m.text", body: "back online?" });
    expect(roomKeyReached(s.server, alice.userId, second)).toBe(true);
  });
});
