import {
  CollectStrategy,
  DeviceId,
  DeviceLists,
  EncryptionSettings,
  LocalTrust,
  RoomId,
  UserId,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCryptoWasm } from "../../src/crypto/load-wasm.js";
import { type RunningMockServer, startMockServer, type ToDeviceEvent } from "../../src/testing/index.js";
import {
  createHostileDevices,
  type HostileDevice,
  publishedSelfSigningKey,
} from "../integration/support/hostile-devices.js";
import { callServer, publishAndCrossSign, WireMachine } from "../integration/support/olm-machines.js";

/**
 * The hostile devices of `test/integration/support/hostile-devices.ts`, injected over real HTTP
 * through `POST /_mock/device_keys` (with the control token), as real crypto-wasm sees them: Bob's
 * machine accepts each (their self-signatures hold), flags the three dehydrated ones, finds none
 * cross-signed by Alice, and can claim an Olm session with every one. Then the MSC3814 rule in
 * action — senders must not encrypt to a dehydrated device its owner did not cross-sign — and the
 * attacker's side reading what reached each inbox, with a control where a room key does arrive
 * so that "no room key" means something.
 */

const CONTROL_TOKEN = "hostile-devices-control-token";

class Wire extends WireMachine {
  /** One /sync from `since`, its to-device events and device-list changes fed to the machine. */
  async sync(since?: string): Promise<{ nextBatch: string; changed: string[] }> {
    const query = since === undefined ? "timeout=0" : `timeout=0&since=${encodeURIComponent(since)}`;
    const body = await this.callJson("GET", `sync?${query}`);
    const changed = ((body.device_lists as { changed?: string[] } | undefined)?.changed ?? []).slice();
    const toDevice = (body.to_device as { events: unknown[] } | undefined)?.events ?? [];
    await this.machine.receiveSyncChanges(
      JSON.stringify(toDevice),
      new DeviceLists(changed.map((u) => new UserId(u))),
      new Map(Object.entries((body.device_one_time_keys_count as Record<string, number>) ?? {})),
      new Set((body.device_unused_fallback_key_types as string[] | undefined) ?? []),
    );
    await this.flush();
    return { nextBatch: body.next_batch as string, changed };
  }
}

/** A control call over the socket, with the control token. */
async function control(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const text = await callServer(
    server,
    method,
    path,
    CONTROL_TOKEN,
    body === undefined ? undefined : JSON.stringify(body),
  );
  return JSON.parse(text) as Record<string, unknown>;
}

async function inbox(userId: string, deviceId: string): Promise<ToDeviceEvent[]> {
  const page = await control(
    "GET",
    `/_mock/to_device/${encodeURIComponent(userId)}/${encodeURIComponent(deviceId)}`,
  );
  return page.events as ToDeviceEvent[];
}

/** Who received what from a `shareRoomKey` plan: device id → `m.room.encrypted` or the withheld code. */
function sharePlan(requests: { event_type?: string; body: string }[], userId: string): Map<string, string> {
  const plan = new Map<string, string>();
  for (const request of requests) {
    const messages = (
      JSON.parse(request.body) as { messages: Record<string, Record<string, { code?: string }>> }
    ).messages;
    for (const [deviceId, content] of Object.entries(messages[userId] ?? {})) {
      plan.set(
        deviceId,
        request.event_type === "m.room.encrypted" ? "m.room.encrypted" : `withheld ${content.code}`,
      );
    }
  }
  return plan;
}

let server: RunningMockServer;
let alice: Wire;
let bob: Wire;
let hostile: HostileDevice[];
let roomId: string;

beforeAll(async () => {
  await loadCryptoWasm();
  server = await startMockServer({ controlToken: CONTROL_TOKEN });
  alice = await Wire.register(server, "alice");
  bob = await Wire.register(server, "bob");
  await publishAndCrossSign(alice, bob);
  const created = await alice.callJson("POST", "createRoom", {});
  roomId = created.room_id as string;
  await alice.callJson("POST", `rooms/${encodeURIComponent(roomId)}/invite`, { user_id: bob.userId });
  await bob.callJson("POST", `join/${encodeURIComponent(roomId)}`, {});
  hostile = await createHostileDevices({
    userId: alice.userId,
    selfSigningKey: publishedSelfSigningKey(server.homeserver, alice.userId),
  });
});

afterAll(async () => {
  for (const device of hostile ?? []) device.close();
  alice?.machine.close();
  bob?.machine.close();
  await server?.close();
});

describe("hostile devices injected into Alice's device list", () => {
  it("are built as the variants say", () => {
    const byVariant = Object.fromEntries(hostile.map((d) => [d.variant, d]));
    const ssk = publishedSelfSigningKey(server.homeserver, alice.userId);
    const signers = (d: HostileDevice) => Object.keys(d.deviceKeys.signatures[alice.userId] ?? {}).sort();

    expect(Object.keys(byVariant).sort()).toEqual(
      ["foreign_ssk", "forged_signature", "unsigned", "unsigned_ordinary"].sort(),
    );
    expect(signers(byVariant.unsigned!)).toEqual([`ed25519:${byVariant.unsigned!.deviceId}`]);
    const foreign = signers(byVariant.foreign_ssk!);
    expect(foreign).toHaveLength(2);
    expect(foreign).not.toContain(`ed25519:${ssk}`);
    expect(signers(byVariant.forged_signature!)).toEqual(
      [`ed25519:${byVariant.forged_signature!.deviceId}`, `ed25519:${ssk}`].sort(),
    );
    expect(signers(byVariant.unsigned_ordinary!)).toEqual([
      `ed25519:${byVariant.unsigned_ordinary!.deviceId}`,
    ]);
    for (const device of hostile) {
      expect(device.deviceKeys.dehydrated === true).toBe(device.dehydrated);
      expect(Object.keys(device.oneTimeKeys).length).toBeGreaterThan(0);
      expect(Object.keys(device.fallbackKeys)).toHaveLength(1);
    }
  });

  it("reach Bob as a device-list change, and his crypto-wasm accepts them but finds none cross-signed", async () => {
    await bob.machine.updateTrackedUsers([alice.user]);
    const before = await bob.sync();
    const aliceDevicesBefore = await bob.machine.getUserDevices(alice.user);
    expect(aliceDevicesBefore.keys().map((d) => d.toString())).toEqual([alice.deviceId]);

    for (const device of hostile) {
      const answer = await control("POST", "/_mock/device_keys", {
        user_id: device.userId,
        device_id: device.injection.deviceId,
        device_keys: device.injection.deviceKeys,
        one_time_keys: device.injection.oneTimeKeys,
        fallback_keys: device.injection.fallbackKeys,
        display_name: device.injection.displayName,
      });
      expect(answer).toEqual({ user_id: alice.userId, device_id: device.deviceId, replaced: false });
    }
    const after = await bob.sync(before.nextBatch);

    expect(after.changed).toContain(alice.userId);
    const real = await bob.machine.getDevice(alice.user, new DeviceId(alice.deviceId));
    expect(real?.isCrossSignedByOwner()).toBe(true);
    for (const device of hostile) {
      const seen = await bob.machine.getDevice(alice.user, new DeviceId(device.deviceId));
      expect(seen, device.variant).toBeDefined();
      expect({ variant: device.variant, dehydrated: seen!.isDehydrated }).toEqual({
        variant: device.variant,
        dehydrated: device.variant !== "unsigned_ordinary",
      });
      expect({ variant: device.variant, crossSigned: seen!.isCrossSignedByOwner() }).toEqual({
        variant: device.variant,
        crossSigned: false,
      });
      expect(seen!.curve25519Key?.toBase64()).toBe(device.deviceKeys.keys[`curve25519:${device.deviceId}`]);
    }
  });

  it("let Bob claim an Olm session with each: they carry one-time keys", async () => {
    const claim = await bob.machine.getMissingSessions([alice.user]);
    expect(claim).toBeDefined();

    const answer = JSON.parse(await bob.carry(claim!)) as Record<string, unknown>;

    const claimed = (answer.one_time_keys as Record<string, Record<string, unknown>>)[alice.userId] ?? {};
    expect(Object.keys(claimed).sort()).toEqual([alice.deviceId, ...hostile.map((d) => d.deviceId)].sort());
    // Nothing left to claim (crypto-wasm answers null, not undefined as its types say).
    expect(await bob.machine.getMissingSessions([alice.user])).toBeFalsy();
  });

  it("get no room key from a sender that keeps the rule; the ordinary one does, by the strategy", async () => {
    const room = new RoomId(roomId);
    const requests = await bob.machine.shareRoomKey(room, [alice.user], new EncryptionSettings());
    const plan = sharePlan(requests, alice.userId);
    for (const request of requests) await bob.carry(request);

    expect(plan.get(alice.deviceId)).toBe("m.room.encrypted");
    for (const device of hostile) {
      const inboxEvents = await inbox(alice.userId, device.deviceId);
      const read = await device.decryptInbox(inboxEvents);
      if (device.dehydrated) {
        expect({ variant: device.variant, plan: plan.get(device.deviceId) }).toEqual({
          variant: device.variant,
          plan: "withheld m.unverified",
        });
        expect(inboxEvents.map((e) => e.type)).toEqual(["m.room_key.withheld"]);
        expect(read).toEqual({ roomKeys: 0, sessions: [], decrypted: undefined });
      } else {
        // AllDevices shares with an unverified ordinary device: no dehydration rule applies.
        expect(plan.get(device.deviceId)).toBe("m.room.encrypted");
        expect(read.roomKeys).toBe(1);
        expect(read.sessions[0]?.roomId).toBe(roomId);
        expect(read.decrypted).toBe(1);
      }
    }
  });

  it("do get a room key when a sender is told to trust them: the attacker side really reads its inbox", async () => {
    const room = new RoomId("!control:localhost");
    for (const device of hostile) {
      const seen = await bob.machine.getDevice(alice.user, new DeviceId(device.deviceId));
      await seen!.setLocalTrust(LocalTrust.Verified);
    }
    const settings = new EncryptionSettings();
    settings.sharingStrategy = CollectStrategy.onlyTrustedDevices();

    const requests = await bob.machine.shareRoomKey(room, [alice.user], settings);
    const plan = sharePlan(requests, alice.userId);
    for (const request of requests) await bob.carry(request);

    for (const device of hostile.filter((d) => d.dehydrated)) {
      expect(plan.get(device.deviceId)).toBe("m.room.encrypted");
      const events = (await inbox(alice.userId, device.deviceId)).filter(
        (e) => e.type === "m.room.encrypted",
      );
      const read = await device.decryptInbox(events);
      expect({ variant: device.variant, roomKeys: read.roomKeys }).toEqual({
        variant: device.variant,
        roomKeys: 1,
      });
      expect(read.sessions[0]?.roomId).toBe(room.toString());
      // Rehydrated afresh each time, so reading the same events again gives the same answer.
      expect((await device.decryptInbox(events)).roomKeys).toBe(1);
    }
  });

  it("can be made to send to-device messages: sendToDeviceAs delivers them with Alice as sender", async () => {
    const from = hostile.find((d) => d.variant === "unsigned")!;

    const answer = await control("POST", "/_mock/send_to_device_as", {
      user_id: alice.userId,
      device_id: from.deviceId,
      event_type: "org.example.hostile",
      messages: { [bob.userId]: { [bob.deviceId]: { from: from.deviceId } } },
    });

    expect(answer).toEqual({ delivered: 1 });
    expect(await inbox(bob.userId, bob.deviceId)).toEqual([
      { type: "org.example.hostile", sender: alice.userId, content: { from: from.deviceId } },
    ]);
  });
});
