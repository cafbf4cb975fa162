import { describe, expect, it } from "vitest";
import type { RoomSendResult } from "../../src/rooms/rooms.js";
import { inClient, type TestClient } from "./support/client-mode.js";
import {
  type Account,
  createAccount,
  loginNewDevice,
  useFoundationSetup,
} from "./support/foundation-fixtures.js";
import {
  createHostileDevice,
  dehydratedHostileVariants,
  type HostileDevice,
  publishedSelfSigningKey,
} from "./support/hostile-devices.js";
import { encryptedRoom, MEGOLM, roomEvents } from "./support/room-fixtures.js";
import { waitUntil } from "./support/sync-fixtures.js";

/**
 * A malicious or compromised server adds dehydrated devices to users' device lists to collect room
 * keys (MSC3814, "Security considerations"). Whatever this SDK's plan says, these tests read what
 * the server delivered to those devices and let the attacker try to open it.
 */

const setup = useFoundationSetup();

const SENDS = 100;
/** Ten sessions over the run, so every device is judged anew ten times. */
const ROTATE_EVERY = 10;

interface Cast {
  aliceClient: TestClient;
  bob: Account;
  carol: Account;
  roomId: string;
  /** Bob's real dehydrated device, cross-signed by him. */
  bobDehydratedId: string;
  bobRecoveryKey: string;
  hostile: HostileDevice[];
}

/**
 * Alice sends; Bob is cross-signed and has a real dehydrated device; Carol has no cross-signing
 * identity at all. The server gives Bob one injected device of each dehydrated kind (unsigned,
 * signed by a made-up self-signing key, a forged signature) and Carol an unsigned dehydrated one.
 */
async function hostileRoom(): Promise<Cast> {
  const { server } = setup;
  const alice = createAccount(server, "alice");
  const bob = createAccount(server, "bob");
  const carol = createAccount(server, "carol");
  const aliceClient = await setup.open(alice);
  await aliceClient.crossSigning.bootstrap();
  const bobClient = await setup.open(bob);
  const boot = await bobClient.crossSigning.bootstrap({ createSecretStorageKey: true });
  setup.watch.secret(boot.recoveryKey);
  setup.watch.secretBytes(boot.secretStorageKey!.key);
  const { deviceId: bobDehydratedId } = await bobClient.dehydration.replaceNow({
    secretStorageKey: boot.secretStorageKey!,
  });
  await bobClient.close();

  const hostile: HostileDevice[] = [];
  const victim = {
    userId: bob.userId,
    selfSigningKey: publishedSelfSigningKey(server.homeserver, bob.userId),
  };
  for (const variant of dehydratedHostileVariants) hostile.push(await createHostileDevice(variant, victim));
  hostile.push(await createHostileDevice("unsigned", { userId: carol.userId }));
  for (const device of hostile) server.homeserver.control.injectDeviceKeys(device.userId, device.injection);

  const roomId = await encryptedRoom(server, alice, [bob, carol], {
    encryption: { ...MEGOLM, rotation_period_msgs: ROTATE_EVERY },
  });
  return { aliceClient, bob, carol, roomId, bobDehydratedId, bobRecoveryKey: boot.recoveryKey!, hostile };
}

describe("sending through a server that injects dehydrated devices", () => {
  it(`across ${SENDS} sends, no room key reaches an injected device; each is told m.unverified; Bob's own dehydrated device gets every key`, async () => {
    const cast = await hostileRoom();
    const { server } = setup;
    const { aliceClient } = cast;
    const sent: RoomSendResult[] = [];
    try {
      for (let i = 0; i < SENDS; i++) {
        sent.push(
          await aliceClient.rooms.send(cast.roomId, "m.room.message", { msgtype: "m.text", body: `m${i}` }),
        );
      }

      const sessions = new Set(sent.map((s) => s.sessionId));
      expect(sessions.size).toBe(SENDS / ROTATE_EVERY);

      // Every plan predicted the refusal, with the rule that applies, and Bob's real devices share.
      for (const result of sent) {
        const byDevice = new Map(result.plan.devices.map((d) => [d.deviceId, d]));
        for (const device of cast.hostile) {
          expect(byDevice.get(device.deviceId)).toMatchObject({
            decision: "withhold",
            code: "m.unverified",
            dehydrated: true,
            rule:
              device.userId === cast.carol.userId
                ? "dehydrated_owner_has_no_identity"
                : "dehydrated_not_cross_signed",
          });
        }
        expect(byDevice.get(cast.bobDehydratedId)).toMatchObject({ decision: "share", dehydrated: true });
        expect(byDevice.get(cast.bob.deviceId)).toMatchObject({ decision: "share" });
      }

      // What the server delivered: the attacker opens each injected device's inbox and finds no room key,
      // only one m.room_key.withheld per session, with m.unverified.
      for (const device of cast.hostile) {
        const inbox = server.homeserver.control.toDeviceInbox(device.userId, device.deviceId).events;
        const opened = await device.decryptInbox(inbox);
        expect(opened.roomKeys, device.variant).toBe(0);
        expect(
          inbox.filter((e) => e.type === "m.room.encrypted"),
          device.variant,
        ).toEqual([]);
        const withheld = inbox.filter((e) => e.type === "m.room_key.withheld");
        expect(withheld.map((e) => (e.content as { code?: string }).code)).toEqual(
          Array.from({ length: sessions.size }, () => "m.unverified"),
        );
        expect(new Set(withheld.map((e) => (e.content as { session_id?: string }).session_id))).toEqual(
          sessions,
        );
      }
    } finally {
      for (const device of cast.hostile) device.close();
    }

    // Bob's properly cross-signed dehydrated device got every key: a new login of Bob drains it and reads all.
    const login = await loginNewDevice(server, cast.bob);
    const bobLater = await setup.open(login);
    const restored = await bobLater.crossSigning.restoreFromRecoveryKey(cast.bobRecoveryKey);
    // Read before the drain, every message waits for its key; the drain's keys release them all.
    const timeline = await roomEvents(server, login, cast.roomId);
    for (const result of sent) {
      expect(await bobLater.rooms.decrypt(timeline.get(result.eventId))).toMatchObject({
        ok: false,
        reason: "missing_room_key",
        waiting: true,
      });
    }
    const released = new Set<string>();
    bobLater.events.on("rooms.decrypted", ({ eventId }) => released.add(eventId));
    const drained = await bobLater.dehydration.drain({ secretStorageKey: restored.secretStorageKey });
    expect(drained.outcome).toBe("completed");
    await waitUntil("every waiting message decrypted", () => released.size === SENDS);
    expect(released).toEqual(new Set(sent.map((r) => r.eventId)));
    let readable = 0;
    for (const [i, result] of sent.entries()) {
      const decrypted = await bobLater.rooms.decrypt(timeline.get(result.eventId));
      if (decrypted.ok && decrypted.event.content.body === `m${i}`) readable++;
    }
    expect(readable).toBe(SENDS);
  });

  it("shows a single dehydrated device as the user's offline device, and all as ordinary ones once a second claims to be", async () => {
    const cast = await hostileRoom();
    const { aliceClient, bob, carol } = cast;
    try {
      const bobs = await aliceClient.rooms.devices(bob.userId);
      // Bob's real dehydrated device plus three injected ones all say "dehydrated": none is the offline device.
      expect(bobs.filter((d) => d.dehydrated)).toHaveLength(4);
      expect(bobs.every((d) => d.display === "device")).toBe(true);
      const carols = await aliceClient.rooms.devices(carol.userId);
      const carolsDehydrated = carols.filter((d) => d.dehydrated);
      expect(carolsDehydrated).toHaveLength(1);
      expect(carolsDehydrated[0]).toMatchObject({
        display: "offline_device",
        label: "Offline device",
        crossSignedByOwner: false,
      });
      await expect(aliceClient.rooms.devices("bob")).rejects.toMatchObject({ code: "invalid_argument" });
    } finally {
      for (const device of cast.hostile) device.close();
    }
  });

  it("drops plaintext to-device messages that name a dehydrated device as their sender, before the crypto layer acts", async () => {
    const cast = await hostileRoom();
    const { aliceClient, bob } = cast;
    const control = setup.server.homeserver.control;
    try {
      await aliceClient.rooms.devices(bob.userId); // Alice's machine knows Bob's devices, injected ones included
      const dropped: unknown[] = [];
      const delivered: string[] = [];
      aliceClient.events.on("sync.toDeviceDropped", ({ events }) => dropped.push(...events));
      aliceClient.events.on("sync.toDevice", ({ events }) => {
        for (const e of events) delivered.push(String((e.event.content as { marker?: string }).marker));
      });
      const rogue = cast.hostile[0]!;
      const say = (deviceId: string, type: string, content: Record<string, unknown>) =>
        control.sendToDeviceAs({ userId: bob.userId, deviceId }, type, {
          [aliceClient.userId]: { [aliceClient.deviceId]: content },
        });
      say(rogue.deviceId, "m.room_key_request", {
        marker: "rogue-key-request",
        action: "request",
        requesting_device_id: rogue.deviceId,
        request_id: "r1",
        body: { room_id: cast.roomId, algorithm: "m.megolm.v1.aes-sha2", session_id: "s" },
      });
      say(rogue.deviceId, "m.key.verification.request", {
        marker: "rogue-verification",
        from_device: rogue.deviceId,
        methods: ["m.sas.v1"],
        transaction_id: "t1",
        timestamp: Date.now(),
      });
      say(cast.bobDehydratedId, "m.secret.request", {
        marker: "real-dehydrated-secret-request",
        action: "request",
        name: "m.cross_signing.master",
        requesting_device_id: cast.bobDehydratedId,
        request_id: "r2",
      });
      say(bob.deviceId, "org.example.hello", { marker: "bob-ordinary", from_device: bob.deviceId });

      await aliceClient.sync.start({ pollTimeoutMs: 200 });
      await waitUntil("the ordinary message arrived", () => delivered.includes("bob-ordinary"));
      expect(delivered).toEqual(["bob-ordinary"]);
      expect(dropped).toEqual([
        {
          type: "m.room_key_request",
          sender: bob.userId,
          deviceId: rogue.deviceId,
          reason: "from_dehydrated_device",
        },
        {
          type: "m.key.verification.request",
          sender: bob.userId,
          deviceId: rogue.deviceId,
          reason: "from_dehydrated_device",
        },
        {
          type: "m.secret.request",
          sender: bob.userId,
          deviceId: cast.bobDehydratedId,
          reason: "from_dehydrated_device",
        },
      ]);
      // The verification request never reached the crypto layer.
      expect(await inClient(aliceClient, "verificationRequestCount", bob.userId)).toBe(0);
    } finally {
      for (const device of cast.hostile) device.close();
    }
  });
});
