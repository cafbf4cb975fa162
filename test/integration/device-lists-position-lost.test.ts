import { describe, expect, it } from "vitest";
import {
  knownDevices,
  refreshRequests,
  roomKeyReached,
  staleRemoteDevice,
  useFederatedSetup,
  waitUntil,
} from "../device-lists/support/federation-fixtures.js";
import { loginNewDevice } from "./support/foundation-fixtures.js";

/**
 * Signal (d), over a real socket: Dave adds a device (his updates arrive: Alice's server knows it)
 * while Alice's sliding-sync connection is forgotten, so the change announced meanwhile is never
 * sent to her. `M_UNKNOWN_POS` makes every tracked user stale (`position_lost`) until re-queried;
 * only the client missed something, so a re-query is the whole repair — MSC2638 is not asked for
 * even where the server has it.
 */

const setup = useFederatedSetup();

describe.each(["synapse-1.157", "msc"] as const)("signal (d): a lost sync position on %s", (profile) => {
  it("every tracked user goes stale until re-queried; the send reaches the device added meanwhile", async () => {
    const s = await setup.start(profile);
    const { control, alice, dave, aliceClient, roomId, trust } = await staleRemoteDevice(s, {
      loseUpdates: false,
    });
    await aliceClient.sync.stop();
    // The fixture's second device came first; a third is added while Alice is away.
    const third = await loginNewDevice(s.server, dave);
    const daveThird = await s.open(third);
    await daveThird.processOutgoingRequests();
    expect(control.expireSlidingSyncConnections({ userId: alice.userId })).toBe(1);

    await aliceClient.sync.start({ pollTimeoutMs: 200 });
    await waitUntil("Alice's list of Dave is re-queried", async () =>
      (await knownDevices(aliceClient, dave.userId)).includes(third.deviceId),
    );
    await waitUntil(
      "the trust is fresh again",
      async () => (await aliceClient.deviceLists.trust(dave.userId)).state === "fresh",
    );

    expect(trust.of(dave.userId).find((t) => t.state === "stale")).toMatchObject({
      reasons: [{ kind: "position_lost" }],
    });
    expect(await aliceClient.deviceLists.trust(dave.userId)).toMatchObject({ cleared: "client_only" });
    expect(refreshRequests(s.server, alice.userId)).toEqual([]);
    await aliceClient.rooms.send(roomId, "m.room.message", { msgtype: "m.text", body: "still there?" });
    expect(roomKeyReached(s.server, alice.userId, third)).toBe(true);
  });
});
