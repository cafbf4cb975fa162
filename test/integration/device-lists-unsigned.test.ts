import { describe, expect, it } from "vitest";
import {
  createRemoteAccount,
  type FederatedSetup,
  keyQueries,
  refreshRequests,
  roomKeyReached,
  TrustRecorder,
  useFederatedSetup,
  waitUntil,
} from "../device-lists/support/federation-fixtures.js";
import { inClient } from "./support/client-mode.js";
import { createAccount, loginNewDevice } from "./support/foundation-fixtures.js";
import { encryptedRoom } from "./support/room-fixtures.js";

/**
 * Signal (b), over a real socket: Dave has cross-signing keys, and Alice's copy of his list shows
 * a device he did sign — but the signature was uploaded while his list updates were lost, so
 * Alice's server still serves the device unsigned. The detector sees an unsigned device of a
 * cross-signed user after the key query, the SDK resyncs, and under `identity_based` (which
 * withholds from unsigned devices) the next send reaches the device. The same unsigned set never
 * triggers twice, so a user with a legitimately unsigned device causes one resync, not a storm.
 */

const setup = useFederatedSetup();

async function signedWhileUpdatesLost(s: FederatedSetup) {
  const control = s.server.homeserver.control;
  const alice = createAccount(s.server, "alice");
  const dave = createRemoteAccount(s.server, "dave");
  const daveFirst = await s.open(dave);
  await daveFirst.processOutgoingRequests();
  const boot = await daveFirst.crossSigning.bootstrap({ createSecretStorageKey: true });
  s.watch.secret(boot.recoveryKey);
  const aliceClient = await s.open(alice, { deviceLists: { refreshArrivalTimeoutMs: 2_000 } });
  await aliceClient.processOutgoingRequests();
  const aliceBoot = await aliceClient.crossSigning.bootstrap({ createSecretStorageKey: true });
  s.watch.secret(aliceBoot.recoveryKey);
  const trust = new TrustRecorder(aliceClient);
  const roomId = await encryptedRoom(s.server, alice, [dave]);
  await aliceClient.sync.start({ pollTimeoutMs: 200 });
  await aliceClient.rooms.send(roomId, "m.room.message", { msgtype: "m.text", body: "hi Dave" });
  await aliceClient.sync.stop();

  // Dave's new device publishes its keys (the update reaches Alice's server) ...
  const second = await loginNewDevice(s.server, dave);
  const daveSecond = await s.open(second);
  await daveSecond.processOutgoingRequests();
  // ... and signs itself once updates are being lost: only Dave's server has the signature.
  control.loseDeviceListUpdates(dave.userId, true);
  const restored = await daveSecond.crossSigning.restoreFromRecoveryKey(boot.recoveryKey);
  expect(restored.deviceCrossSigned).toBe(true);
  expect(control.remoteCache(dave.userId).stale).toBe(true);
  return { control, alice, dave, second, aliceClient, trust, roomId };
}

describe("signal (b): an unsigned device of a user with cross-signing keys", () => {
  it("msc: the refresh brings the signature; identity_based then shares with the device", async () => {
    const s = await setup.start("msc");
    const { alice, dave, second, aliceClient, trust, roomId } = await signedWhileUpdatesLost(s);

    // Alice's loop resumes and hears of Dave's device; her query shows it unsigned.
    await aliceClient.sync.start({ pollTimeoutMs: 200 });
    await waitUntil("Dave's list is refreshed", () => trust.of(dave.userId).some((t) => t.state === "fresh"));
    expect(trust.of(dave.userId)[0]).toMatchObject({
      state: "stale",
      reasons: [{ kind: "unsigned_devices", deviceIds: [second.deviceId] }],
    });
    expect(await aliceClient.deviceLists.trust(dave.userId)).toMatchObject({ cleared: "server_and_client" });
    expect(refreshRequests(s.server, alice.userId)).toHaveLength(1);
    expect(await inClient(aliceClient, "deviceCrossSignedByOwner", dave.userId, second.deviceId)).toBe(true);

    const sent = await aliceClient.rooms.send(
      roomId,
      "m.room.message",
      { msgtype: "m.text", body: "for your signed devices" },
      { strategy: "identity_based" },
    );
    expect(sent.plan.devices.find((d) => d.deviceId === second.deviceId)?.decision).toBe("share");
    expect(roomKeyReached(s.server, alice.userId, second)).toBe(true);
  });

  it("synapse-1.157: one resync (client_only), the device stays unsigned, and the same set never triggers again", async () => {
    const s = await setup.start("synapse-1.157");
    const { alice, dave, second, aliceClient, trust, roomId } = await signedWhileUpdatesLost(s);

    await aliceClient.sync.start({ pollTimeoutMs: 200 });
    await waitUntil("the resync finished", () => trust.of(dave.userId).some((t) => t.state === "fresh"));
    expect(await aliceClient.deviceLists.trust(dave.userId)).toMatchObject({ cleared: "client_only" });
    expect(await inClient(aliceClient, "deviceCrossSignedByOwner", dave.userId, second.deviceId)).toBe(false);

    // Every later query shows the same unsigned device: no new evidence, no resync.
    const changes = trust.changes.length;
    const queries = keyQueries(s.server, alice.userId).length;
    for (let i = 0; i < 3; i++) await aliceClient.rooms.devices(dave.userId);
    await inClient(aliceClient, "markAllTrackedUsersAsDirty");
    await aliceClient.processOutgoingRequests();
    expect(keyQueries(s.server, alice.userId).length).toBeGreaterThan(queries);
    // Lets the detector read those answers (it runs after each one, off the request path).
    await new Promise((r) => setTimeout(r, 50));
    expect(trust.changes.length).toBe(changes);

    const sent = await aliceClient.rooms.send(
      roomId,
      "m.room.message",
      { msgtype: "m.text", body: "for your signed devices" },
      { strategy: "identity_based" },
    );
    expect(sent.plan.devices.find((d) => d.deviceId === second.deviceId)).toMatchObject({
      decision: "withhold",
      code: "m.unverified",
    });
  });
});
