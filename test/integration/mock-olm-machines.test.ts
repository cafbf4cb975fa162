import {
  DecryptionSettings,
  DeviceId,
  EncryptionSettings,
  initAsync,
  ProcessedToDeviceEventType,
  RequestType,
  RoomId,
  TrustRequirement,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type RunningMockServer, startMockServer } from "../../src/testing/index.js";
import { type OutgoingRequest, WireMachine } from "./support/olm-machines.js";

/**
 * Two real crypto-wasm `OlmMachine`s (in-memory) talk to the mock homeserver over a real HTTP
 * socket: the test itself carries every outgoing request to the server with plain `fetch` and
 * hands the answer back with `markRequestAsSent` (`support/olm-machines.ts`), so the mock's key and
 * to-device endpoints are checked against the real library's expectations rather than our own
 * reading of the spec. To-device messages are read over the socket from the mock's inbox accessor
 * (`GET /_mock/to_device/…`) and acknowledged the way a client does: sliding sync's
 * `to_device.since` (MSC3885).
 */

const uploadAnswer = z.looseObject({ one_time_key_counts: z.record(z.string(), z.number()) });
const queryAnswer = z.looseObject({
  device_keys: z.record(
    z.string(),
    z.record(z.string(), z.looseObject({ keys: z.record(z.string(), z.string()) })),
  ),
  master_keys: z.record(z.string(), z.unknown()),
  failures: z.record(z.string(), z.unknown()),
});
const claimAnswer = z.looseObject({
  one_time_keys: z.record(z.string(), z.record(z.string(), z.record(z.string(), z.unknown()))),
  failures: z.record(z.string(), z.unknown()),
});

class WireClient extends WireMachine {
  /** Requests sent, by `RequestType` name, so the test can assert what the machine asked for. */
  readonly sent: string[] = [];

  /** Every answer must have the shape the machine expects; a signature upload must fail nothing. */
  protected override received(request: OutgoingRequest, answer: string): string {
    switch (request.type) {
      case RequestType.KeysUpload:
        uploadAnswer.parse(JSON.parse(answer));
        break;
      case RequestType.KeysQuery:
        queryAnswer.parse(JSON.parse(answer));
        break;
      case RequestType.KeysClaim:
        claimAnswer.parse(JSON.parse(answer));
        break;
      case RequestType.SignatureUpload:
        expect(JSON.parse(answer)).toEqual({ failures: {} });
        break;
    }
    this.sent.push(RequestType[request.type]);
    return answer;
  }
}

let server: RunningMockServer;
let alice: WireClient;
let bob: WireClient;
const roomId = new RoomId("!room:localhost");

beforeAll(async () => {
  await initAsync();
  server = await startMockServer({ host: "127.0.0.1", port: 0 });
  alice = await WireClient.register(server, "alice");
  bob = await WireClient.register(server, "bob");
});

afterAll(async () => {
  alice?.machine.close();
  bob?.machine.close();
  await server?.close();
});

describe("two OlmMachines over the mock homeserver", () => {
  it("upload their device and one-time keys", async () => {
    await alice.flush();
    await bob.flush();

    expect(alice.sent).toContain("KeysUpload");
    const counts = await bob.oneTimeKeyCounts();
    expect(counts.get("signed_curve25519")).toBeGreaterThan(0);
    const aliceKeys = server.homeserver.state.keys.deviceKeys(alice.userId, alice.deviceId)?.keys;
    expect(aliceKeys).toEqual({
      [`ed25519:${alice.deviceId}`]: alice.machine.identityKeys.ed25519.toBase64(),
      [`curve25519:${alice.deviceId}`]: alice.machine.identityKeys.curve25519.toBase64(),
    });
  });

  it("bootstrap cross-signing and see each other's devices as cross-signed by their owners", async () => {
    for (const client of [alice, bob]) await client.bootstrapCrossSigning();

    await alice.machine.updateTrackedUsers([bob.user]);
    await bob.machine.updateTrackedUsers([alice.user]);
    await alice.flush();
    await bob.flush();

    const bobSeenByAlice = await alice.machine.getDevice(bob.user, new DeviceId(bob.deviceId));
    const aliceSeenByBob = await bob.machine.getDevice(alice.user, new DeviceId(alice.deviceId));
    expect(alice.sent).toContain("KeysQuery");
    expect(bobSeenByAlice?.curve25519Key?.toBase64()).toBe(bob.machine.identityKeys.curve25519.toBase64());
    expect(bobSeenByAlice?.isCrossSignedByOwner()).toBe(true);
    expect(aliceSeenByBob?.isCrossSignedByOwner()).toBe(true);
  });

  it("claim a one-time key and exchange an Olm-encrypted to-device message", async () => {
    const before = (await bob.oneTimeKeyCounts()).get("signed_curve25519") ?? 0;
    const claim = await alice.machine.getMissingSessions([bob.user]);
    expect(claim).toBeDefined();
    const claimed = claimAnswer.parse(JSON.parse(await alice.carry(claim!)));
    expect(Object.keys(claimed.one_time_keys[bob.userId]?.[bob.deviceId] ?? {})).toHaveLength(1);
    expect((await bob.oneTimeKeyCounts()).get("signed_curve25519")).toBe(before - 1);

    const device = await alice.machine.getDevice(bob.user, new DeviceId(bob.deviceId));
    const encrypted = await device!.encryptToDeviceEvent("org.example.secret", { body: "hello, bob" });
    await alice.call(
      "PUT",
      "sendToDevice/m.room.encrypted/olm-1",
      JSON.stringify({ messages: { [bob.userId]: { [bob.deviceId]: JSON.parse(encrypted) } } }),
    );
    const { delivered, processed } = await bob.receiveToDevice();

    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toMatchObject({ type: "m.room.encrypted", sender: alice.userId });
    expect(JSON.stringify(delivered[0])).not.toContain("hello, bob");
    const decrypted = processed.filter((e) => e.type === ProcessedToDeviceEventType.Decrypted);
    expect(decrypted).toHaveLength(1);
    expect(JSON.parse(decrypted[0]!.rawEvent)).toMatchObject({
      type: "org.example.secret",
      sender: alice.userId,
      content: { body: "hello, bob" },
    });
    expect(server.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId).events).toEqual([]);
    await bob.flush();
  });

  it("share a Megolm room key through to-device messages and decrypt a room event with it", async () => {
    const shares = await alice.machine.shareRoomKey(roomId, [bob.user], new EncryptionSettings());
    expect(shares.length).toBeGreaterThan(0);
    for (const share of shares) await alice.carry(share);
    const encrypted = await alice.machine.encryptRoomEvent(
      roomId,
      "m.room.message",
      JSON.stringify({ msgtype: "m.text", body: "the room secret" }),
    );

    const { delivered } = await bob.receiveToDevice();
    expect(delivered.map((e) => e.type)).toEqual(["m.room.encrypted"]);
    const event = {
      type: "m.room.encrypted",
      event_id: "$megolm-1",
      sender: alice.userId,
      origin_server_ts: Date.now(),
      room_id: roomId.toString(),
      content: JSON.parse(encrypted),
    };
    const decrypted = await bob.machine.decryptRoomEvent(
      JSON.stringify(event),
      roomId,
      new DecryptionSettings(TrustRequirement.CrossSignedOrLegacy),
    );

    expect(JSON.stringify(event)).not.toContain("the room secret");
    expect(JSON.parse(decrypted.event)).toMatchObject({
      type: "m.room.message",
      content: { msgtype: "m.text", body: "the room secret" },
    });
    expect(decrypted.sender.toString()).toBe(alice.userId);
  });
});
