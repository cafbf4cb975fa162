import { describe, expect, it } from "vitest";
import {
  keyQueries,
  knownDevices,
  refreshRequests,
  roomKeyReached,
  staleRemoteDevice,
  useFederatedSetup,
} from "../device-lists/support/federation-fixtures.js";

/**
 * Signal (e), over a real socket: Dave logs in on a new device while his device-list updates are
 * lost, so neither Alice's server nor her client lists it; Alice's app reports what Dave told her
 * ("I have a new phone") and sends. The SDK resyncs before encrypting — by MSC2638 where the
 * server has it, by re-query elsewhere — and the room key reaches the new device. Where neither
 * can repair the server's stale copy (Synapse serves remote users from its cache), the trust says
 * only the client's copy was cleared.
 */

const setup = useFederatedSetup();

describe("signal (e): the app reports a device the user says they have", () => {
  it("msc: an MSC2638 refresh, the list arrives through sync, the send reaches the new device", async () => {
    const s = await setup.start("msc");
    const { control, alice, dave, second, aliceClient, roomId, trust } = await staleRemoteDevice(s);
    expect(control.remoteCache(dave.userId)).toMatchObject({ stale: true });
    expect(await knownDevices(aliceClient, dave.userId)).toEqual([dave.deviceId]);

    const reported = await aliceClient.deviceLists.report(dave.userId, "Dave says he has a new phone");
    expect(reported).toMatchObject({ reasons: [{ kind: "reported", note: "Dave says he has a new phone" }] });
    // The send waits (at most sendTimeoutMs) for the resync the report started.
    await aliceClient.rooms.send(roomId, "m.room.message", { msgtype: "m.text", body: "can you read this?" });

    expect(await aliceClient.deviceLists.trust(dave.userId)).toMatchObject({
      state: "fresh",
      cleared: "server_and_client",
    });
    expect(control.remoteCache(dave.userId)).toMatchObject({ stale: false });
    expect(await knownDevices(aliceClient, dave.userId)).toEqual([dave.deviceId, second.deviceId].sort());
    expect(roomKeyReached(s.server, alice.userId, second)).toBe(true);
    expect(refreshRequests(s.server, alice.userId)).toHaveLength(1);
    expect(trust.of(dave.userId).map((t) => t.state)).toEqual(["stale", "refreshing", "fresh"]);
    expect(trust.of(dave.userId)[1]).toMatchObject({ via: "msc2638" });
    // Plain data: what the app stores or posts to a worker is what it read.
    const all = await aliceClient.deviceLists.trustAll();
    expect(structuredClone(all)).toEqual(all);
    expect(JSON.parse(JSON.stringify(trust.changes))).toEqual(trust.changes);
  });

  it("tuwunel: MSC2638 not advertised, a re-query reaches Dave's server, the send reaches the new device", async () => {
    const s = await setup.start("tuwunel");
    const { alice, dave, second, aliceClient, roomId, trust } = await staleRemoteDevice(s);
    expect(await knownDevices(aliceClient, dave.userId)).toEqual([dave.deviceId]);
    const queriesBefore = keyQueries(s.server, alice.userId).length;

    await aliceClient.deviceLists.report(dave.userId);
    await aliceClient.rooms.send(roomId, "m.room.message", { msgtype: "m.text", body: "can you read this?" });

    expect(await aliceClient.deviceLists.trust(dave.userId)).toMatchObject({
      state: "fresh",
      cleared: "client_only",
    });
    expect(await knownDevices(aliceClient, dave.userId)).toEqual([dave.deviceId, second.deviceId].sort());
    expect(roomKeyReached(s.server, alice.userId, second)).toBe(true);
    // Not advertised in /versions: never asked.
    expect(refreshRequests(s.server, alice.userId)).toEqual([]);
    expect(keyQueries(s.server, alice.userId).length).toBeGreaterThan(queriesBefore);
    expect(trust.of(dave.userId).map((t) => t.state)).toEqual(["stale", "refreshing", "fresh"]);
    expect(trust.of(dave.userId)[1]).toMatchObject({ via: "requery" });
  });

  it("synapse-1.157: the re-query is answered from the stale cache; the trust says client_only, honestly", async () => {
    const s = await setup.start("synapse-1.157");
    const { control, alice, dave, second, aliceClient, roomId } = await staleRemoteDevice(s);

    await aliceClient.deviceLists.report(dave.userId);
    await aliceClient.rooms.send(roomId, "m.room.message", { msgtype: "m.text", body: "can you read this?" });

    // The client re-queried, and Synapse answered from its copy: only the client's staleness is
    // cleared, and the trust says exactly that.
    expect(await aliceClient.deviceLists.trust(dave.userId)).toMatchObject({
      state: "fresh",
      cleared: "client_only",
    });
    expect(control.remoteCache(dave.userId)).toMatchObject({ stale: true });
    expect(await knownDevices(aliceClient, dave.userId)).toEqual([dave.deviceId]);
    expect(roomKeyReached(s.server, alice.userId, second)).toBe(false);
    expect(refreshRequests(s.server, alice.userId)).toEqual([]);
  });
});
