import { describe, expect, it } from "vitest";
import type { RoomDecryptResult } from "../../src/rooms/room-decryption.js";
import { isRoomError, type RoomError } from "../../src/rooms/room-errors.js";
import { inClient, type TestClient } from "./support/client-mode.js";
import { type Account, createAccount, useFoundationSetup } from "./support/foundation-fixtures.js";
import { encryptedRoom, roomEvent, roomEvents } from "./support/room-fixtures.js";
import { waitUntil } from "./support/sync-fixtures.js";

const setup = useFoundationSetup();

const SEND_TO_DEVICE = "/_matrix/client/v3/sendToDevice/";

/** Alice (cross-signed) and Bob, each with a client whose sliding-sync loop runs, in one encrypted room. */
async function aliceAndBob(options: { historyVisibility?: string } = {}) {
  const alice = createAccount(setup.server, "alice");
  const bob = createAccount(setup.server, "bob");
  const aliceClient = await setup.open(alice);
  const bobClient = await setup.open(bob);
  await aliceClient.crossSigning.bootstrap();
  await bobClient.crossSigning.bootstrap();
  for (const c of [aliceClient, bobClient]) await c.processOutgoingRequests();
  const roomId = await encryptedRoom(setup.server, alice, [bob], options);
  await bobClient.sync.start({ pollTimeoutMs: 200 });
  return { alice, bob, aliceClient, bobClient, roomId };
}

/** Bob's client decrypts the event once its room key arrived through his loop. */
async function decryptedBy(client: TestClient, reader: Account, roomId: string, eventId: string) {
  const event = await roomEvent(setup.server, reader, roomId, eventId);
  let result: RoomDecryptResult | undefined;
  await waitUntil("the event decrypts", async () => {
    result = await client.rooms.decrypt(event);
    return result.ok;
  });
  return result as RoomDecryptResult & { ok: true };
}

function toDeviceSends(): { type: string; body: unknown }[] {
  return setup.server.homeserver.control
    .requestLog()
    .filter((e) => e.method === "PUT" && e.path.startsWith(SEND_TO_DEVICE))
    .map((e) => ({
      type: decodeURIComponent(e.path.slice(SEND_TO_DEVICE.length).split("/")[0] ?? ""),
      body: e.body,
    }));
}

describe("client.rooms.send", () => {
  it("shares the room key with every member's device, sends the event, and the other side decrypts it", async () => {
    const { bob, aliceClient, bobClient, roomId } = await aliceAndBob();
    const sent = await aliceClient.rooms.send(roomId, "m.room.message", {
      msgtype: "m.text",
      body: "hello Bob",
    });

    expect(sent.eventId).toMatch(/^\$/);
    expect(sent.plan.refusal).toBeUndefined();
    expect(sent.plan.devices).toEqual([
      expect.objectContaining({
        userId: bob.userId,
        deviceId: bob.deviceId,
        decision: "share",
        rule: "shared",
      }),
    ]);
    expect(sent.applied).toEqual([{ userId: bob.userId, deviceId: bob.deviceId, outcome: "shared" }]);
    // What the server delivered agrees with the applied plan: one Olm message to Bob's device.
    const inbox = setup.server.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId).events;
    expect(
      inbox.filter((e) => e.type === "m.room.encrypted" && e.sender === aliceClient.userId),
    ).toHaveLength(1);

    const decrypted = await decryptedBy(bobClient, bob, roomId, sent.eventId);
    expect(decrypted.event).toEqual({
      type: "m.room.message",
      content: { msgtype: "m.text", body: "hello Bob" },
    });
    // Alice is cross-signed, not verified by Bob: no red shield, whichever came first (sync or bootstrap).
    expect(decrypted.sender).toMatchObject({
      userId: aliceClient.userId,
      deviceId: aliceClient.deviceId,
      trust: "unverified",
    });
    expect(decrypted.sender.shield.color).not.toBe("red");
    // Her own message, to her own device: cross-signed by her verified identity.
    const own = await aliceClient.rooms.decrypt(await roomEvent(setup.server, bob, roomId, sent.eventId));
    expect(own).toMatchObject({ ok: true, sender: { trust: "verified", shield: { color: "none" } } });
  });

  it("keeps the applied plan cumulative over one session: a second send shares nothing anew", async () => {
    const { bob, aliceClient, roomId } = await aliceAndBob();
    const first = await aliceClient.rooms.send(roomId, "m.room.message", { body: "1" });
    const sendsAfterFirst = toDeviceSends().length;
    const second = await aliceClient.rooms.send(roomId, "m.room.message", { body: "2" });
    expect(second.sessionId).toBe(first.sessionId);
    expect(toDeviceSends()).toHaveLength(sendsAfterFirst);
    expect(second.applied).toEqual([{ userId: bob.userId, deviceId: bob.deviceId, outcome: "shared" }]);
  });

  it("is idempotent by transaction id: the same txnId gives the same event", async () => {
    const { aliceClient, roomId } = await aliceAndBob();
    const first = await aliceClient.rooms.send(roomId, "m.room.message", { body: "once" }, { txnId: "t1" });
    const again = await aliceClient.rooms.send(roomId, "m.room.message", { body: "once" }, { txnId: "t1" });
    expect(again.eventId).toBe(first.eventId);
  });

  it("refuses a room that is not encrypted, or not with Megolm, before sending anything", async () => {
    const alice = createAccount(setup.server, "alice");
    const bob = createAccount(setup.server, "bob");
    const aliceClient = await setup.open(alice);
    const plain = await encryptedRoom(setup.server, alice, [bob], { encryption: null });
    const olm = await encryptedRoom(setup.server, alice, [bob], {
      encryption: { algorithm: "m.olm.v1.curve25519-aes-sha2" },
    });
    setup.server.homeserver.control.clearRequestLog();
    await expect(aliceClient.rooms.send(plain, "m.room.message", { body: "x" })).rejects.toMatchObject({
      name: "RoomError",
      code: "room_not_encrypted",
    });
    await expect(aliceClient.rooms.send(olm, "m.room.message", { body: "x" })).rejects.toMatchObject({
      code: "unsupported_algorithm",
    });
    const log = setup.server.homeserver.control.requestLog();
    expect(log.filter((e) => e.method !== "GET")).toEqual([]);
  });

  it("rejects bad arguments with invalid_argument and sends nothing", async () => {
    const { aliceClient, roomId } = await aliceAndBob();
    setup.server.homeserver.control.clearRequestLog();
    const bad: [string, () => Promise<unknown>][] = [
      ["room id", () => aliceClient.rooms.send("not-a-room", "m.room.message", {})],
      ["type", () => aliceClient.rooms.send(roomId, "", {})],
      ["content", () => aliceClient.rooms.send(roomId, "m.room.message", [] as never)],
      [
        "strategy",
        () => aliceClient.rooms.send(roomId, "m.room.message", {}, { strategy: "everyone" as never }),
      ],
      ["plan", () => aliceClient.rooms.send(roomId, "m.room.message", {}, { expectedPlan: {} as never })],
      ["txnId", () => aliceClient.rooms.send(roomId, "m.room.message", {}, { txnId: "" })],
      ["encrypted type", () => aliceClient.rooms.send(roomId, "m.room.encrypted", { body: "x" })],
      ["a function in content", () => aliceClient.rooms.send(roomId, "m.room.message", { f: () => 1 })],
      ["a cycle", () => aliceClient.rooms.send(roomId, "m.room.message", cyclic())],
      ["a date", () => aliceClient.rooms.send(roomId, "m.room.message", { at: new Date() })],
      ["too large", () => aliceClient.rooms.send(roomId, "m.room.message", { body: "x".repeat(48_000) })],
      ["members", () => aliceClient.rooms.updateRoom(roomId, { members: ["@a:hs"] as never })],
      ["user id", () => aliceClient.rooms.devices("alice")],
    ];
    for (const [what, call] of bad) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isRoomError(error), what).toBe(true);
      expect((error as RoomError).code, what).toBe("invalid_argument");
    }
    // Alice's: Bob's loop may still be starting (slower with the clients in workers).
    expect(
      setup.server.homeserver.control.requestLog().filter((e) => e.userId === aliceClient.userId),
    ).toEqual([]);
  });

  it("uses the members the app reports instead of asking the server", async () => {
    const { bob, aliceClient, roomId } = await aliceAndBob();
    await aliceClient.rooms.updateRoom(roomId, {
      encryption: { algorithm: "m.megolm.v1.aes-sha2" },
      historyVisibility: { history_visibility: "shared" },
      members: { [aliceClient.userId]: "join", [bob.userId]: "leave" },
    });
    setup.server.homeserver.control.clearRequestLog();
    const sent = await aliceClient.rooms.send(roomId, "m.room.message", { body: "to nobody else" });
    expect(sent.plan.devices).toEqual([]);
    const paths = setup.server.homeserver.control.requestLog().map((e) => e.path);
    expect(paths.some((p) => p.endsWith("/members") || p.includes("/state/"))).toBe(false);
    expect(toDeviceSends()).toEqual([]);
  });

  it("fails with plan_mismatch, sending nothing, when a device was blacklisted after the plan was shown", async () => {
    const { bob, aliceClient, roomId } = await aliceAndBob();
    const plan = await aliceClient.rooms.planRecipients(roomId);
    expect(plan.devices.map((d) => d.decision)).toEqual(["share"]);
    await inClient(aliceClient, "setLocalTrust", bob.userId, bob.deviceId, "blacklisted");
    setup.server.homeserver.control.clearRequestLog();

    const error = (await aliceClient.rooms
      .send(roomId, "m.room.message", { body: "secret" }, { expectedPlan: plan })
      .catch((e: unknown) => e)) as RoomError;
    expect(error).toMatchObject({ name: "RoomError", code: "plan_mismatch" });
    expect(error.details.differences).toEqual([
      {
        userId: bob.userId,
        deviceId: bob.deviceId,
        predicted: "share",
        applied: "withheld",
        appliedCode: "m.blacklisted",
      },
    ]);
    expect(error.details.predicted).toEqual(plan);
    expect(toDeviceSends()).toEqual([]);
    expect(setup.server.homeserver.control.requestLog().some((e) => e.path.includes("/send/"))).toBe(false);

    // Planned again, the send goes out with the withheld notice the new plan predicts.
    const fresh = await aliceClient.rooms.planRecipients(roomId);
    const sent = await aliceClient.rooms.send(
      roomId,
      "m.room.message",
      { body: "secret" },
      { expectedPlan: fresh },
    );
    expect(sent.applied).toEqual([
      { userId: bob.userId, deviceId: bob.deviceId, outcome: "withheld", code: "m.blacklisted" },
    ]);
    expect(toDeviceSends().map((s) => s.type)).toEqual(["m.room_key.withheld"]);
  });

  it("refuses under identity_based while this device's identity is not set up, saying so in the plan", async () => {
    const alice = createAccount(setup.server, "alice");
    const bob = createAccount(setup.server, "bob");
    const aliceClient = await setup.open(alice, { rooms: { sharingStrategy: "identity_based" } });
    const roomId = await encryptedRoom(setup.server, alice, [bob]);
    const plan = await aliceClient.rooms.planRecipients(roomId);
    expect(plan.refusal?.code).toBe("cross_signing_not_set_up");
    await expect(aliceClient.rooms.send(roomId, "m.room.message", { body: "x" })).rejects.toMatchObject({
      code: "sharing_refused",
      details: {
        plan: expect.objectContaining({
          refusal: expect.objectContaining({ code: "cross_signing_not_set_up" }),
        }),
      },
    });
    expect(toDeviceSends()).toEqual([]);
  });

  it("rejects a bad sharing strategy in the client options", async () => {
    const alice = createAccount(setup.server, "alice");
    await expect(setup.open(alice, { rooms: { sharingStrategy: "nobody" as never } })).rejects.toMatchObject({
      code: "invalid_options",
    });
  });

  it("survives a refused key share: the send fails, the retry sends the same pending shares, and Bob reads it", async () => {
    const { bob, aliceClient, bobClient, roomId } = await aliceAndBob();
    const control = setup.server.homeserver.control;
    control.scriptFailure({
      method: "PUT",
      path: "/_matrix/client/v3/sendToDevice/*",
      status: 403,
      errcode: "M_FORBIDDEN",
    });
    const error = await aliceClient.rooms
      .send(roomId, "m.room.message", { body: "try again" }, { txnId: "retry-1" })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "RoomError", code: "send_failed" });
    expect(control.requestLog().some((e) => e.path.includes("/send/m.room.encrypted/"))).toBe(false);

    const sent = await aliceClient.rooms.send(
      roomId,
      "m.room.message",
      { body: "try again" },
      { txnId: "retry-1" },
    );
    expect(sent.applied).toEqual([{ userId: bob.userId, deviceId: bob.deviceId, outcome: "shared" }]);
    const decrypted = await decryptedBy(bobClient, bob, roomId, sent.eventId);
    expect(decrypted.event.content).toEqual({ body: "try again" });
  });

  it("sends the event once when the server's answer to the send is lost and the transport repeats it", async () => {
    const { bob, aliceClient, roomId } = await aliceAndBob();
    const control = setup.server.homeserver.control;
    control.scriptFailure({
      method: "PUT",
      path: "/_matrix/client/v3/rooms/{roomId}/send/*",
      when: "after",
      drop: true,
    });
    const sent = await aliceClient.rooms.send(roomId, "m.room.message", { body: "only once" });
    const events = await roomEvents(setup.server, bob, roomId);
    expect([...events.values()].filter((e) => e.type === "m.room.encrypted").map((e) => e.event_id)).toEqual([
      sent.eventId,
    ]);
    const puts = control
      .requestLog()
      .filter((e) => e.method === "PUT" && e.path.includes("/send/m.room.encrypted/"));
    expect(puts.length).toBeGreaterThanOrEqual(2);
  });

  it("says room_unavailable for a room it cannot read, and client_closed for a send the close interrupts", async () => {
    const { aliceClient, roomId } = await aliceAndBob();
    await expect(
      aliceClient.rooms.send(`!nowhere:${setup.server.homeserver.state.serverName}`, "m.room.message", {
        body: "x",
      }),
    ).rejects.toMatchObject({
      name: "RoomError",
      code: "room_unavailable",
      cause: { errcode: "M_FORBIDDEN" },
    });

    setup.server.homeserver.control.setFaults({ latencyMs: 20 });
    const sending = aliceClient.rooms.send(roomId, "m.room.message", { body: "interrupted" });
    const queued = aliceClient.rooms.send(roomId, "m.room.message", { body: "behind it" });
    const outcome = (call: Promise<unknown>) =>
      call.then(
        () => "sent",
        (e: unknown) => (e as { code?: string }).code,
      );
    // Handled before the close: in a worker their rejections arrive before close() resolves.
    const [sendingOutcome, queuedOutcome] = [outcome(sending), outcome(queued)];
    await new Promise((resolve) => setTimeout(resolve, 30));
    await aliceClient.close();
    expect(["sent", "client_closed"]).toContain(await sendingOutcome);
    expect(await queuedOutcome).toBe("client_closed");
    await expect(aliceClient.rooms.updateRoom(roomId, {})).rejects.toMatchObject({ code: "client_closed" });
  });

  it("tracks the members the app reports, so their messages decrypt with their identity known", async () => {
    const { bob, aliceClient, roomId } = await aliceAndBob();
    await aliceClient.rooms.updateRoom(roomId, { members: { [bob.userId]: "join" } });
    const tracked = await inClient(aliceClient, "trackedUsers");
    expect(tracked).toContain(bob.userId);
  });

  it("checks a confirmed plan against everyone holding the session, not only this send's shares", async () => {
    const { bob, aliceClient, roomId } = await aliceAndBob();
    await aliceClient.rooms.planRecipients(roomId); // Alice's machine learns Bob's device
    await inClient(aliceClient, "setLocalTrust", bob.userId, bob.deviceId, "blacklisted");
    const shown = await aliceClient.rooms.planRecipients(roomId);
    expect(shown.devices.map((d) => d.code)).toEqual(["m.blacklisted"]);
    await inClient(aliceClient, "setLocalTrust", bob.userId, bob.deviceId, "unset");
    // A send the user did not confirm shares the session with Bob …
    await aliceClient.rooms.send(roomId, "m.room.message", { body: "quick" });
    // … so the plan they saw (Bob withheld) no longer describes the session: refused, nothing sent.
    await expect(
      aliceClient.rooms.send(roomId, "m.room.message", { body: "confirmed" }, { expectedPlan: shown }),
    ).rejects.toMatchObject({
      code: "plan_mismatch",
      details: {
        differences: [
          expect.objectContaining({ deviceId: bob.deviceId, predicted: "withhold", applied: "shared" }),
        ],
      },
    });
    const fresh = await aliceClient.rooms.planRecipients(roomId);
    await expect(
      aliceClient.rooms.send(
        roomId,
        "m.room.message",
        { body: "x" },
        { expectedPlan: { ...fresh, roomId: "!other:hs" } },
      ),
    ).rejects.toMatchObject({ code: "invalid_argument" });
    await expect(
      aliceClient.rooms.send(
        roomId,
        "m.room.message",
        { body: "x" },
        { expectedPlan: fresh, strategy: "identity_based" },
      ),
    ).rejects.toMatchObject({ code: "invalid_argument" });
    await expect(
      aliceClient.rooms.send(
        roomId,
        "m.room.message",
        { body: "x" },
        {
          expectedPlan: { ...fresh, refusal: { code: "cross_signing_not_set_up", reason: "r", userIds: [] } },
        },
      ),
    ).rejects.toMatchObject({ code: "invalid_argument" });
    const sent = await aliceClient.rooms.send(
      roomId,
      "m.room.message",
      { body: "confirmed" },
      { expectedPlan: fresh },
    );
    expect(sent.eventId).toMatch(/^\$/);
  });

  it("claims one-time keys once per device when sends to several rooms run at once", async () => {
    const { alice, bob, aliceClient } = await aliceAndBob();
    const rooms = await Promise.all([1, 2, 3].map(() => encryptedRoom(setup.server, alice, [bob])));
    setup.server.homeserver.control.clearRequestLog();
    await Promise.all(
      rooms.map((roomId) => aliceClient.rooms.send(roomId, "m.room.message", { body: roomId })),
    );
    const claims = setup.server.homeserver.control
      .requestLog()
      .filter((e) => e.path === "/_matrix/client/v3/keys/claim");
    expect(claims).toHaveLength(1);
  });
});

function cyclic(): Record<string, unknown> {
  const value: Record<string, unknown> = {};
  value.self = value;
  return value;
}
