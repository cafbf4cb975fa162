import { describe, expect, it } from "vitest";
import { profiles } from "../../src/testing/index.js";
import {
  knownDevices,
  refreshRequests,
  roomKeyReached,
  shareRoomKeyOnly,
  staleRemoteDevice,
  untilKnown,
  useFederatedSetup,
  waitUntil,
} from "../device-lists/support/federation-fixtures.js";

/**
 * Signal (a), over a real socket: Dave's new device, which neither Alice's server nor her client
 * lists (its updates were lost), shares a room key with Alice. Her sync decrypts the `m.room_key`
 * from a Curve25519 key her list lacks, the detector marks Dave stale, the SDK resyncs, and the
 * next send reaches the new device.
 *
 * Only the to-device messages are sent (no room event), so no server heals itself on a room
 * `m.room.encrypted` naming the device (Synapse `_resync_device`): what repairs the list is the
 * SDK. MSC2638 is tried on Synapse's behaviour with the refresh switched on, where a to-device
 * message starts no server-side resync either.
 */

const setup = useFederatedSetup();

const SYNAPSE_WITH_MSC2638 = {
  deviceListRefresh: true,
  unstableFeatures: { ...profiles["synapse-1.157"].unstableFeatures, "org.matrix.msc2638": true },
};

describe("signal (a): a message from a device the list does not hold", () => {
  it("MSC2638 (Synapse's cache, refresh switched on): refreshed, the send reaches the device", async () => {
    const s = await setup.start("synapse-1.157", {}, SYNAPSE_WITH_MSC2638);
    const { alice, dave, second, aliceClient, daveSecond, roomId, trust } = await staleRemoteDevice(s);

    await shareRoomKeyOnly(daveSecond, roomId, [alice.userId]);
    await waitUntil("Alice's list of Dave is fresh again", () =>
      trust.of(dave.userId).some((t) => t.state === "fresh"),
    );

    const [stale] = trust.of(dave.userId);
    expect(stale).toMatchObject({
      state: "stale",
      reasons: [{ kind: "unknown_device", source: "to_device", senderKey: expect.any(String) }],
    });
    expect(await aliceClient.deviceLists.trust(dave.userId)).toMatchObject({
      state: "fresh",
      cleared: "server_and_client",
    });
    expect(refreshRequests(s.server, alice.userId)).toHaveLength(1);
    expect(await knownDevices(aliceClient, dave.userId)).toEqual([dave.deviceId, second.deviceId].sort());
    await aliceClient.rooms.send(roomId, "m.room.message", { msgtype: "m.text", body: "got your key" });
    expect(roomKeyReached(s.server, alice.userId, second)).toBe(true);
  });

  it("msc: the server heals on the message too; either way the list is repaired and the send reaches it", async () => {
    const s = await setup.start("msc");
    const { alice, dave, second, aliceClient, daveSecond, roomId } = await staleRemoteDevice(s, {
      alice: { deviceLists: { refreshArrivalTimeoutMs: 1_000 } },
    });

    await shareRoomKeyOnly(daveSecond, roomId, [alice.userId]);
    await untilKnown(aliceClient, dave.userId, second.deviceId);
    await aliceClient.rooms.send(roomId, "m.room.message", { msgtype: "m.text", body: "got your key" });
    expect(roomKeyReached(s.server, alice.userId, second)).toBe(true);
    expect((await aliceClient.deviceLists.trust(dave.userId)).state).not.toBe("failed");
  });

  it("tuwunel: re-queried from Dave's server, the send reaches the device", async () => {
    const s = await setup.start("tuwunel");
    const { alice, dave, second, aliceClient, daveSecond, roomId, trust } = await staleRemoteDevice(s);

    await shareRoomKeyOnly(daveSecond, roomId, [alice.userId]);
    await untilKnown(aliceClient, dave.userId, second.deviceId);
    await waitUntil(
      "the resync finished",
      async () => (await aliceClient.deviceLists.trust(dave.userId)).state === "fresh",
    );

    expect(trust.of(dave.userId)[0]).toMatchObject({ state: "stale", reasons: [{ kind: "unknown_device" }] });
    expect(await aliceClient.deviceLists.trust(dave.userId)).toMatchObject({ cleared: "client_only" });
    await aliceClient.rooms.send(roomId, "m.room.message", { msgtype: "m.text", body: "got your key" });
    expect(roomKeyReached(s.server, alice.userId, second)).toBe(true);
  });

  it("synapse-1.157: client_only and still unknown, until Synapse heals itself on a room event", async () => {
    const s = await setup.start("synapse-1.157");
    const { control, alice, dave, second, aliceClient, daveSecond, roomId } = await staleRemoteDevice(s);

    await shareRoomKeyOnly(daveSecond, roomId, [alice.userId]);
    await waitUntil(
      "the resync finished",
      async () => (await aliceClient.deviceLists.trust(dave.userId)).state === "fresh",
    );
    expect(await aliceClient.deviceLists.trust(dave.userId)).toMatchObject({ cleared: "client_only" });
    expect(control.remoteCache(dave.userId).stale).toBe(true);
    expect(await knownDevices(aliceClient, dave.userId)).toEqual([dave.deviceId]);

    // The device sends a room event: Synapse resyncs on the unknown device_id itself, announces
    // the change, and Alice's client queries it like any change.
    await daveSecond.rooms.send(roomId, "m.room.message", { msgtype: "m.text", body: "from my phone" });
    await untilKnown(aliceClient, dave.userId, second.deviceId);
    expect(control.remoteCache(dave.userId).stale).toBe(false);
  });
});
