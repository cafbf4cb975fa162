import * as sdk from "matrix-js-sdk";
import { afterEach, describe, expect, it } from "vitest";
import type { RoomDecryptResult, RoomDecryptSuccess } from "../../src/rooms/room-decryption.js";
import type { RunningMockServer } from "../../src/testing/index.js";
import type { ToDeviceEvent } from "../../src/testing/state/to-device-store.js";
import { inClient } from "./support/client-mode.js";
import { createAccount, loginNewDevice, useFoundationSetup } from "./support/foundation-fixtures.js";
import { jsSdkDecryptions, keysUploaded, startJsSdkClient, until } from "./support/js-sdk-clients.js";
import { encryptedRoom, roomEvents } from "./support/room-fixtures.js";
import { waitUntil } from "./support/sync-fixtures.js";

/**
 * Interop of `client.rooms` with an independent implementation in one encrypted room: Alice is
 * this SDK (cross-signed, her sliding-sync loop running), Bob a real matrix-js-sdk 43 client with
 * its rust crypto on classic `/sync`. Bob's matrix-js-sdk decrypts what `rooms.send` sends, through
 * its own decryption path, attributed to Alice's device; what the mock delivered to each device for
 * Alice's first send is exactly what her applied plan says; and `rooms.decrypt` opens what Bob's
 * matrix-js-sdk sends, waiting for the room key where it has not arrived through the loop yet.
 *
 * Bob also has a second device (this SDK, not started) that Alice blacklists, so that the plan has
 * one device that gets the key and one that gets an `m.room_key.withheld`.
 */

const setup = useFoundationSetup();

const SEND_TO_DEVICE = "/_matrix/client/v3/sendToDevice/";
const OLM = "m.olm.v1.curve25519-aes-sha2";
const MEGOLM = "m.megolm.v1.aes-sha2";

interface Delivery {
  userId: string;
  deviceId: string;
  event: ToDeviceEvent;
}

/**
 * Records every to-device message the mock puts into any inbox, read the moment it lands (before
 * any sync can acknowledge it, so a fast recipient does not hide it).
 */
function tapDeliveries(server: RunningMockServer): { stop(): Delivery[] } {
  const seen: Delivery[] = [];
  const off = server.homeserver.state.toDevice.onChange(({ userId, deviceId, streamId }) => {
    const [event] = server.homeserver.control.toDeviceInbox(userId, deviceId, {
      since: String(streamId - 1),
      limit: 1,
    }).events;
    if (event) seen.push({ userId, deviceId, event });
  });
  return {
    stop: () => {
      off();
      return seen;
    },
  };
}

/** The `PUT /sendToDevice` requests `userId` made from log position `afterSeq` on: type → user → device. */
function toDeviceRequests(server: RunningMockServer, userId: string, afterSeq: number) {
  return server.homeserver.control
    .requestLog()
    .filter(
      (e) =>
        e.seq > afterSeq && e.userId === userId && e.method === "PUT" && e.path.startsWith(SEND_TO_DEVICE),
    )
    .map((e) => ({
      type: decodeURIComponent(e.path.slice(SEND_TO_DEVICE.length).split("/")[0] ?? ""),
      messages: (e.body as { messages: Record<string, Record<string, unknown>> }).messages,
    }));
}

function lastSeq(server: RunningMockServer): number {
  return server.homeserver.control.requestLog().at(-1)?.seq ?? 0;
}

const byDevice = (a: { userId: string; deviceId: string }, b: { userId: string; deviceId: string }) =>
  `${a.userId} ${a.deviceId}`.localeCompare(`${b.userId} ${b.deviceId}`);

describe("client.rooms with a matrix-js-sdk 43 client in the room", () => {
  let bobJs: sdk.MatrixClient | undefined;

  afterEach(() => {
    // Before the setup closes this SDK's clients and the server (hooks run innermost first).
    bobJs?.stopClient();
    bobJs = undefined;
  });

  it("sends what matrix-js-sdk decrypts, delivers exactly the applied plan, and decrypts what matrix-js-sdk sends", async () => {
    const server = setup.server;
    const alice = createAccount(server, "alice");
    const bob = createAccount(server, "bob");
    setup.watch.secret(bob.accessToken);
    const bobSecond = await loginNewDevice(server, bob);

    const aliceClient = await setup.open(alice);
    await aliceClient.crossSigning.bootstrap();
    await aliceClient.processOutgoingRequests();
    await aliceClient.sync.start({ pollTimeoutMs: 200 });
    const aliceCurve25519 = (await inClient(aliceClient, "identityKeys")).curve25519;

    // Bob's second device publishes its keys and never runs: Alice blacklists it below.
    const bobSecondClient = await setup.open(bobSecond);
    await bobSecondClient.processOutgoingRequests();

    bobJs = await startJsSdkClient(server.url, bob);
    const bobClient = bobJs;
    const bobCurve25519 = (await bobClient.getCrypto()!.getOwnDeviceKeys()).curve25519;
    await waitUntil(
      "Bob's matrix-js-sdk device keys are on the server",
      () => keysUploaded(server, bob.userId, '"device_keys"'),
      10_000,
    );

    const roomId = await encryptedRoom(server, alice, [bob]);
    const bobReads = jsSdkDecryptions(bobClient, roomId);
    const bobsRoom = () => bobClient.getRoom(roomId);
    await until(
      bobClient,
      "Bob's matrix-js-sdk sees the encrypted room with both joined",
      () =>
        bobsRoom()?.hasEncryptionStateEvent() === true &&
        bobsRoom()?.getMyMembership() === "join" &&
        bobsRoom()?.getMember(alice.userId)?.membership === "join",
    );

    // The plan before the blacklist: both of Bob's devices would get the key.
    const before = await aliceClient.rooms.planRecipients(roomId);
    expect(before.refusal).toBeUndefined();
    expect(before.devices.map((d) => [d.deviceId, d.decision]).sort()).toEqual(
      [
        [bob.deviceId, "share"],
        [bobSecond.deviceId, "share"],
      ].sort(),
    );
    await inClient(aliceClient, "setLocalTrust", bob.userId, bobSecond.deviceId, "blacklisted");

    // 1. Alice's first send, with every delivery of the server recorded while it runs.
    const bodies = ["first from Alice", "second from Alice", "third from Alice"];
    const seqBefore = lastSeq(server);
    const tap = tapDeliveries(server);
    const first = await aliceClient.rooms.send(roomId, "m.room.message", {
      msgtype: "m.text",
      body: bodies[0],
    });
    const delivered = tap.stop();
    const requested = toDeviceRequests(server, alice.userId, seqBefore);

    expect(first.plan.refusal).toBeUndefined();
    expect(
      first.plan.devices
        .map(({ userId, deviceId, decision, code, rule }) => ({ userId, deviceId, decision, code, rule }))
        .sort(byDevice),
    ).toEqual(
      [
        { userId: bob.userId, deviceId: bob.deviceId, decision: "share", code: undefined, rule: "shared" },
        {
          userId: bob.userId,
          deviceId: bobSecond.deviceId,
          decision: "withhold",
          code: "m.blacklisted",
          rule: "blacklisted",
        },
      ].sort(byDevice),
    );
    expect([...first.applied].sort(byDevice)).toEqual(
      [
        { userId: bob.userId, deviceId: bob.deviceId, outcome: "shared" },
        { userId: bob.userId, deviceId: bobSecond.deviceId, outcome: "withheld", code: "m.blacklisted" },
      ].sort(byDevice),
    );

    // What the server delivered from Alice during that send is exactly the applied plan.
    const fromAlice = delivered.filter((d) => d.event.sender === alice.userId);
    const shared = first.applied.filter((a) => a.outcome === "shared");
    const withheld = first.applied.filter((a) => a.outcome === "withheld");
    const sharedTo = fromAlice.filter((d) => d.event.type === "m.room.encrypted");
    const withheldTo = fromAlice.filter((d) => d.event.type === "m.room_key.withheld");
    expect(sharedTo.map(({ userId, deviceId }) => ({ userId, deviceId })).sort(byDevice)).toEqual(
      shared.map(({ userId, deviceId }) => ({ userId, deviceId })).sort(byDevice),
    );
    expect(withheldTo.map(({ userId, deviceId }) => ({ userId, deviceId })).sort(byDevice)).toEqual(
      withheld.map(({ userId, deviceId }) => ({ userId, deviceId })).sort(byDevice),
    );
    // Nothing else, and no device outside the plan, got anything from Alice.
    expect(fromAlice).toHaveLength(sharedTo.length + withheldTo.length);
    const planned = new Set(first.plan.devices.map((d) => `${d.userId} ${d.deviceId}`));
    expect(fromAlice.filter((d) => !planned.has(`${d.userId} ${d.deviceId}`))).toEqual([]);
    // The Olm message is addressed to the curve key of Bob's matrix-js-sdk device, from Alice's.
    for (const d of sharedTo) {
      expect(d.event.content).toMatchObject({ algorithm: OLM, sender_key: aliceCurve25519 });
      expect(Object.keys(d.event.content.ciphertext as object)).toEqual([bobCurve25519]);
    }
    for (const d of withheldTo) {
      const code = withheld.find((w) => w.deviceId === d.deviceId)?.code;
      expect(d.event.content).toMatchObject({
        code,
        algorithm: MEGOLM,
        room_id: roomId,
        session_id: first.sessionId,
        sender_key: aliceCurve25519,
      });
    }
    // Alice's requests say the same as the deliveries: one per type, to those devices only.
    const asked = requested.flatMap(({ type, messages }) =>
      Object.entries(messages).flatMap(([userId, devices]) =>
        Object.keys(devices).map((deviceId) => ({ type, userId, deviceId })),
      ),
    );
    expect(asked.sort(byDevice)).toEqual(
      fromAlice.map((d) => ({ type: d.event.type, userId: d.userId, deviceId: d.deviceId })).sort(byDevice),
    );

    // 2. Two more sends in the same session: nothing is shared anew, the plan stays as applied.
    const seqAfterFirst = lastSeq(server);
    const rest = [];
    for (const body of bodies.slice(1)) {
      rest.push(await aliceClient.rooms.send(roomId, "m.room.message", { msgtype: "m.text", body }));
    }
    const sentByAlice = [first, ...rest];
    for (const sent of rest) {
      expect(sent.sessionId).toBe(first.sessionId);
      expect([...sent.applied].sort(byDevice)).toEqual([...first.applied].sort(byDevice));
    }
    expect(toDeviceRequests(server, alice.userId, seqAfterFirst)).toEqual([]);

    // Bob's matrix-js-sdk decrypts each, from Alice's device as his own device list knows it.
    await until(bobClient, "Bob's matrix-js-sdk decrypts Alice's three messages", () =>
      sentByAlice.every((s) => bobReads.has(s.eventId)),
    );
    const aliceDevices = await bobClient.getCrypto()!.getUserDeviceInfo([alice.userId]);
    const aliceDeviceForBob = aliceDevices.get(alice.userId)?.get(alice.deviceId);
    expect(aliceDeviceForBob?.getIdentityKey()).toBe(aliceCurve25519);
    sentByAlice.forEach((sent, i) => {
      expect(bobReads.get(sent.eventId)).toEqual({
        body: bodies[i],
        sender: alice.userId,
        senderKey: aliceCurve25519,
        sessionId: first.sessionId,
      });
    });

    // 3. Bob's matrix-js-sdk sends three messages; Alice reads them from /messages and decrypts.
    // The first goes out while Alice's loop runs, so its room key reaches her the ordinary way.
    // Then Bob starts a new Megolm session and Alice's loop is stopped while he sends the other
    // two with it: their key waits in her inbox, the decrypt must say so, and once her loop runs
    // again each of them must come out through `rooms.decrypted`.
    const fromBob = ["first from Bob", "second from Bob", "third from Bob"];
    const lateResults = new Map<string, RoomDecryptSuccess>();
    aliceClient.events.on("rooms.decrypted", ({ roomId: room, eventId, result }) => {
      if (room === roomId) lateResults.set(eventId, result);
    });
    const send = async (body: string) =>
      (await bobClient.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body })).event_id;
    const sentByBob = [await send(fromBob[0]!)];
    await aliceClient.sync.stop();
    await bobClient.getCrypto()!.forceDiscardSession(roomId);
    for (const body of fromBob.slice(1)) sentByBob.push(await send(body));

    const events = await roomEvents(server, alice, roomId);
    const sessionOf = (eventId: string) =>
      (events.get(eventId)?.content as { session_id?: unknown })?.session_id;
    expect(sessionOf(sentByBob[1]!)).toBe(sessionOf(sentByBob[2]!));
    expect(sessionOf(sentByBob[1]!)).not.toBe(sessionOf(sentByBob[0]!));
    const firstTries = new Map<string, RoomDecryptResult>();
    for (const eventId of sentByBob) {
      const event = events.get(eventId);
      expect(event).toMatchObject({ type: "m.room.encrypted", sender: bob.userId });
      expect(JSON.stringify(event)).not.toContain("from Bob");
      const result = await aliceClient.rooms.decrypt(event);
      firstTries.set(eventId, result);
      // The first message's key may or may not have come through the loop before it stopped.
      if (!result.ok) expect(result).toMatchObject({ reason: "missing_room_key", waiting: true });
    }
    for (const eventId of sentByBob.slice(1)) {
      expect(firstTries.get(eventId)).toMatchObject({ ok: false, reason: "missing_room_key", waiting: true });
      expect(lateResults.has(eventId)).toBe(false);
    }

    await aliceClient.sync.start({ pollTimeoutMs: 200 });
    const resultOf = (eventId: string) => {
      const tried = firstTries.get(eventId);
      return tried?.ok ? tried : lateResults.get(eventId);
    };
    await waitUntil(
      "Alice has decrypted Bob's three messages",
      () => sentByBob.every((id) => resultOf(id) !== undefined),
      15_000,
    );
    sentByBob.forEach((eventId, i) => {
      const result = resultOf(eventId);
      expect(result?.event).toEqual({
        type: "m.room.message",
        content: { msgtype: "m.text", body: fromBob[i] },
      });
      expect(result?.sender).toMatchObject({
        userId: bob.userId,
        deviceId: bob.deviceId,
        curve25519Key: bobCurve25519,
      });
    });
    // What `rooms.decrypted` said is what `decrypt` says now that the key is there.
    for (const eventId of sentByBob.slice(1)) {
      expect(await aliceClient.rooms.decrypt(events.get(eventId))).toEqual(lateResults.get(eventId));
    }

    // The room keys both sides hold must not show up in anything this SDK logged or emitted.
    const aliceKeys = JSON.parse(await inClient(aliceClient, "exportRoomKeys")) as {
      session_key: string;
    }[];
    const bobKeys = await bobClient.getCrypto()!.exportRoomKeys();
    // Alice's outbound session and Bob's two.
    expect(aliceKeys.length).toBeGreaterThanOrEqual(3);
    for (const key of [...aliceKeys, ...bobKeys]) setup.watch.secret(key.session_key);

    expect(
      server.homeserver.control.requestLog().filter((e) => e.status !== null && e.status >= 500),
    ).toEqual([]);
  });
});
