import { describe, expect, it, vi } from "vitest";
import { ManualClock, type MockHomeserverOptions } from "../../../src/testing/index.js";
import { harnessesOn, type StartHarness, transports } from "../support/transports.js";
import { loginDevice, registerUser } from "./e2ee-test-users.js";
import { createRoom, invite, join, leave, sendText, sharedRoom, since, sync } from "./room-support.js";

async function setup(start: StartHarness, options: MockHomeserverOptions = {}) {
  const server = await start(options);
  const alice = await registerUser(server, "alice");
  const bob = await registerUser(server, "bob");
  return { server, mock: server.homeserver, alice, bob };
}

const path = (roomId: string, rest: string) => `rooms/${encodeURIComponent(roomId)}/${rest}`;

describe.each(transports)("GET /sync: rooms (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("gives an initial sync every joined room with state, timeline, prev_batch and empty extras", async () => {
    const { alice } = await setup(start);
    const roomId = await createRoom(alice, { name: "Room" });
    await sendText(alice, roomId, "hello");

    const body = await sync(alice);
    const room = body.rooms?.join?.[roomId];

    expect(body.next_batch).toMatch(/^s\d+_\d+_\d+_\d+$/);
    expect(room?.timeline.limited).toBe(false);
    expect(room?.timeline.events.at(-1)?.content).toEqual({ msgtype: "m.text", body: "hello" });
    expect(room?.timeline.prev_batch).toMatch(/^t\d+$/);
    expect(room).toMatchObject({
      account_data: { events: [] },
      ephemeral: { events: [] },
      unread_notifications: { notification_count: 0, highlight_count: 0 },
      summary: {},
    });
    // Without `room_id` inside /sync; the sender's own echo carries its transaction id.
    expect(room?.timeline.events.at(-1)).not.toHaveProperty("room_id");
    expect(room?.timeline.events.at(-1)?.unsigned?.transaction_id).toMatch(/^t\d+$/);
  });

  it("sends at most the last 10 timeline events without a filter, as Synapse does", async () => {
    const { alice } = await setup(start);
    const roomId = await createRoom(alice);
    for (let i = 0; i < 12; i++) await sendText(alice, roomId, `m${i}`);

    const timeline = (await sync(alice)).rooms!.join![roomId]!.timeline;

    expect(timeline.limited).toBe(true);
    expect(timeline.events.map((e) => e.content.body)).toEqual(
      Array.from({ length: 10 }, (_, i) => `m${i + 2}`),
    );
  });

  it("puts the state before a limited timeline into state, and prev_batch continues in /messages", async () => {
    const { alice } = await setup(start);
    const roomId = await createRoom(alice);
    for (let i = 0; i < 6; i++) await sendText(alice, roomId, `m${i}`);

    const body = await sync(
      alice,
      `filter=${encodeURIComponent(JSON.stringify({ room: { timeline: { limit: 2 } } }))}`,
    );
    const room = body.rooms!.join![roomId]!;

    expect(room.timeline.limited).toBe(true);
    expect(room.timeline.events.map((e) => e.content.body)).toEqual(["m4", "m5"]);
    expect(room.state.events.map((e) => e.type)).toContain("m.room.create");
    const older = await alice.call(
      "GET",
      path(roomId, `messages?dir=b&limit=2&from=${room.timeline.prev_batch}`),
    );
    expect((older.body.chunk as { content: { body: string } }[]).map((e) => e.content.body)).toEqual([
      "m3",
      "m2",
    ]);
  });

  it("sends only what is new after since, and leaves out quiet rooms", async () => {
    const { alice } = await setup(start);
    const busy = await createRoom(alice);
    const quiet = await createRoom(alice);
    const first = await sync(alice);
    await sendText(alice, busy, "news");

    const next = await sync(alice, since(first.next_batch));

    expect(Object.keys(next.rooms?.join ?? {})).toEqual([busy]);
    expect(next.rooms?.join?.[busy]?.timeline.events.map((e) => e.content.body)).toEqual(["news"]);
    expect(next.rooms?.join?.[busy]?.state.events).toEqual([]);
    expect(next.rooms?.join?.[quiet]).toBeUndefined();
  });

  it("shows the invite with stripped state, then the room with full state once joined", async () => {
    const { alice, bob } = await setup(start);
    const before = await sync(bob);
    const roomId = await createRoom(alice, {
      name: "Secret",
      initial_state: [
        { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
      ],
    });
    await invite(alice, roomId, bob);

    const invited = await sync(bob, since(before.next_batch));
    const strippedTypes = invited.rooms?.invite?.[roomId]?.invite_state.events.map((e) => e.type);
    const own = invited.rooms?.invite?.[roomId]?.invite_state.events.at(-1);
    expect(strippedTypes).toEqual([
      "m.room.create",
      "m.room.join_rules",
      "m.room.name",
      "m.room.encryption",
      "m.room.member",
      "m.room.member",
    ]);
    expect(own).toMatchObject({ type: "m.room.member", state_key: bob.userId, sender: alice.userId });

    await join(bob, roomId);
    const joined = await sync(bob, since(invited.next_batch));
    const room = joined.rooms?.join?.[roomId];
    const allState = [...(room?.state.events ?? []), ...(room?.timeline.events ?? [])].map((e) => e.type);
    expect(allState).toContain("m.room.encryption");
    expect(allState).toContain("m.room.create");
    expect(joined.rooms?.invite).toBeUndefined();
  });

  it("reports a room the user left under leave, with the leave event, once", async () => {
    const { alice, bob } = await setup(start);
    const roomId = await sharedRoom(alice, bob);
    const before = await sync(bob);
    await leave(bob, roomId);

    const after = await sync(bob, since(before.next_batch));
    const left = after.rooms?.leave?.[roomId];
    expect(left?.timeline.events.at(-1)).toMatchObject({
      type: "m.room.member",
      content: { membership: "leave" },
    });
    expect((await sync(bob, since(after.next_batch, "timeout=0"))).rooms).toBeUndefined();
    expect((await sync(bob)).rooms?.leave).toBeUndefined();
    const withLeave = await sync(bob, `filter=${encodeURIComponent('{"room":{"include_leave":true}}')}`);
    expect(Object.keys(withLeave.rooms?.leave ?? {})).toEqual([roomId]);
  });

  it("shows a rejected invite under leave with only the leave event and no room state", async () => {
    const { alice, bob } = await setup(start);
    const roomId = await createRoom(alice, { name: "Private" });
    await invite(alice, roomId, bob);
    const invited = await sync(bob);
    await leave(bob, roomId);

    const after = await sync(bob, since(invited.next_batch));
    const left = after.rooms?.leave?.[roomId];
    expect(left?.timeline.events.map((e) => e.content.membership)).toEqual(["leave"]);
    expect(left?.state.events).toEqual([]);
  });

  it("sends full state again with full_state=true", async () => {
    const { alice } = await setup(start);
    const roomId = await createRoom(alice);
    const first = await sync(alice);

    const again = await sync(alice, since(first.next_batch, "full_state=true"));
    expect(again.rooms?.join?.[roomId]?.state.events.map((e) => e.type)).toContain("m.room.create");
  });

  it("counts unread messages from others since the user's own last event", async () => {
    const { alice, bob } = await setup(start);
    const roomId = await sharedRoom(alice, bob);
    await sendText(bob, roomId, "mine");
    await sendText(alice, roomId, "one");
    await alice.call("PUT", path(roomId, "send/m.room.message/mention"), {
      msgtype: "m.text",
      body: "hey bob",
      "m.mentions": { user_ids: [bob.userId] },
    });

    expect((await sync(bob)).rooms?.join?.[roomId]?.unread_notifications).toEqual({
      notification_count: 2,
      highlight_count: 1,
    });
  });

  it("gives the member counts as a summary when the filter lazy-loads members", async () => {
    const { alice, bob } = await setup(start);
    const roomId = await sharedRoom(alice, bob);
    const lazy = `filter=${encodeURIComponent('{"room":{"state":{"lazy_load_members":true}}}')}`;

    expect((await sync(alice, lazy)).rooms?.join?.[roomId]?.summary).toEqual({
      "m.heroes": [bob.userId],
      "m.joined_member_count": 2,
      "m.invited_member_count": 0,
    });
  });
});

describe.each(transports)("GET /sync: account data, to-device and keys (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("sends all account data and the push rules initially, then only what was written since", async () => {
    const { alice } = await setup(start);
    await alice.call("PUT", `user/${encodeURIComponent(alice.userId)}/account_data/m.one`, { a: 1 });
    const first = await sync(alice);
    await alice.call("PUT", `user/${encodeURIComponent(alice.userId)}/account_data/m.two`, { b: 2 });

    expect(first.account_data?.events.map((e) => e.type)).toEqual(["m.one", "m.push_rules"]);
    const next = await sync(alice, since(first.next_batch));
    expect(next.account_data?.events).toEqual([{ type: "m.two", content: { b: 2 } }]);
  });

  it("delivers to-device messages and deletes them only when the next since acknowledges them", async () => {
    const { mock, alice, bob } = await setup(start);
    const first = await sync(bob);
    await alice.call("PUT", "sendToDevice/m.test/1", {
      messages: { [bob.userId]: { [bob.deviceId]: { n: 1 } } },
    });

    const delivered = await sync(bob, since(first.next_batch));
    expect(delivered.to_device?.events).toEqual([
      { type: "m.test", sender: alice.userId, content: { n: 1 } },
    ]);
    // Retrying with the old token (a lost response) delivers the message again.
    const retried = await sync(bob, since(first.next_batch));
    expect(retried.to_device?.events).toHaveLength(1);
    expect(mock.state.toDevice.pendingCount(bob.userId, bob.deviceId)).toBe(1);

    const acknowledged = await sync(bob, since(delivered.next_batch, "timeout=0"));
    expect(acknowledged.to_device).toBeUndefined();
    expect(mock.state.toDevice.pendingCount(bob.userId, bob.deviceId)).toBe(0);
  });

  it("hands out at most 100 to-device messages per response and the rest next time", async () => {
    const { mock, bob } = await setup(start);
    for (let i = 0; i < 130; i++)
      mock.state.toDevice.enqueue(bob.userId, bob.deviceId, {
        type: "m.n",
        sender: bob.userId,
        content: { i },
      });

    const first = await sync(bob);
    const second = await sync(bob, since(first.next_batch));

    expect(first.to_device?.events).toHaveLength(100);
    expect(second.to_device?.events.map((e) => e.content.i)).toEqual(
      Array.from({ length: 30 }, (_, i) => 100 + i),
    );
  });

  it("reports users sharing a room whose keys changed, newcomers, and users who left", async () => {
    const { server, alice, bob } = await setup(start);
    const carol = await registerUser(server, "carol");
    const stranger = await registerUser(server, "dave");
    const roomId = await sharedRoom(alice, bob);
    const first = await sync(alice);

    await loginDevice(server, "bob");
    await loginDevice(server, "dave");
    await invite(alice, roomId, carol);
    const changed = await sync(alice, since(first.next_batch));
    expect(changed.device_lists).toEqual({ changed: [bob.userId, carol.userId] });
    expect(changed.device_lists?.changed).not.toContain(stranger.userId);

    await leave(bob, roomId);
    const left = await sync(alice, since(changed.next_batch));
    expect(left.device_lists).toEqual({ left: [bob.userId] });
  });

  it("always sends the one-time key count with signed_curve25519 and the unused fallback key types", async () => {
    const { alice } = await setup(start);
    const empty = await sync(alice);
    expect(empty.device_one_time_keys_count).toEqual({ signed_curve25519: 0 });
    expect(empty.device_unused_fallback_key_types).toEqual([]);

    await alice.call("POST", "keys/upload", {
      one_time_keys: { "signed_curve25519:A": { key: "k", signatures: {} } },
      fallback_keys: { "signed_curve25519:F": { key: "f", fallback: true, signatures: {} } },
    });
    const full = await sync(alice);
    expect(full.device_one_time_keys_count).toEqual({ signed_curve25519: 1 });
    expect(full.device_unused_fallback_key_types).toEqual(["signed_curve25519"]);
  });

  it("leaves a zero signed_curve25519 count out under a profile that does not seed it", async () => {
    const { alice } = await setup(start, { overrides: { seedSignedCurve25519Count: false } });

    expect((await sync(alice)).device_one_time_keys_count).toEqual({});
  });
});

describe.each(transports)("GET /sync: parameters and long-polling (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("answers 400 M_UNKNOWN for a malformed since and one from the future", async () => {
    const { alice } = await setup(start);

    for (const token of ["garbage", "s1_2_3", "s99999_0_0_0"]) {
      const res = await alice.call("GET", `sync?since=${token}`);
      expect(res, token).toMatchObject({
        status: 400,
        body: { errcode: "M_UNKNOWN", error: "Invalid stream token" },
      });
    }
  });

  it("accepts an uploaded filter id and inline JSON, and refuses unknown ids and bad JSON", async () => {
    const { alice } = await setup(start);
    await createRoom(alice);
    const uploaded = await alice.call("POST", `user/${encodeURIComponent(alice.userId)}/filter`, {
      room: { timeline: { limit: 1 } },
    });

    const byId = await sync(alice, `filter=${uploaded.body.filter_id}`);
    expect(Object.values(byId.rooms?.join ?? {})[0]?.timeline.events).toHaveLength(1);
    expect((await alice.call("GET", "sync?filter=42")).body).toMatchObject({ errcode: "M_INVALID_PARAM" });
    expect((await alice.call("GET", "sync?filter=%7Bnope")).body).toMatchObject({ errcode: "M_NOT_JSON" });
    const wrongType = encodeURIComponent('{"room":{"timeline":{"limit":"ten"}}}');
    expect((await alice.call("GET", `sync?filter=${wrongType}`)).body).toMatchObject({
      errcode: "M_BAD_JSON",
    });
  });

  it("refuses bad timeout, full_state and set_presence values", async () => {
    const { alice } = await setup(start);

    expect((await alice.call("GET", "sync?timeout=soon")).body.errcode).toBe("M_INVALID_PARAM");
    expect((await alice.call("GET", "sync?full_state=yes")).body.errcode).toBe("M_INVALID_PARAM");
    expect((await alice.call("GET", "sync?set_presence=busy")).body.errcode).toBe("M_INVALID_PARAM");
  });

  it("waits for the timeout on the server's clock when nothing happens", async () => {
    const clock = new ManualClock();
    const { alice } = await setup(start, { clock });
    const first = await sync(alice);

    let done = false;
    const pending = sync(alice, since(first.next_batch, "timeout=30000")).then((b) => {
      done = true;
      return b;
    });
    await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1));
    await clock.advance(29_000);
    expect(done).toBe(false);
    await clock.advance(1_000);
    const body = await pending;
    expect(body.rooms).toBeUndefined();
    expect(body.next_batch).toBe(first.next_batch);
  });

  it("returns early when a message arrives in one of the user's rooms, but not for other rooms", async () => {
    const clock = new ManualClock();
    const { server, alice, bob } = await setup(start, { clock });
    const roomId = await sharedRoom(alice, bob);
    const elsewhere = await createRoom(await registerUser(server, "carol"));
    const first = await sync(bob);

    let body: Awaited<ReturnType<typeof sync>> | undefined;
    const pending = sync(bob, since(first.next_batch, "timeout=30000")).then((b) => {
      body = b;
    });
    await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1));
    await clock.advance(10);
    await sendText(await loginDevice(server, "carol"), elsewhere, "not for bob");
    await clock.advance(10);
    expect(body).toBeUndefined();
    await sendText(alice, roomId, "for bob");
    await pending;
    expect(body?.rooms?.join?.[roomId]?.timeline.events.map((e) => e.content.body)).toEqual(["for bob"]);
    expect(clock.pendingSleeps).toBe(0);
  });

  it("returns early for a to-device message to this device", async () => {
    const clock = new ManualClock();
    const { alice, bob } = await setup(start, { clock });
    const first = await sync(bob);

    const pending = sync(bob, since(first.next_batch, "timeout=60000"));
    await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1));
    await clock.advance(5);
    await alice.call("PUT", "sendToDevice/m.ping/1", { messages: { [bob.userId]: { "*": {} } } });
    expect((await pending).to_device?.events.map((e) => e.type)).toEqual(["m.ping"]);
  });

  it("stops waiting when the client goes away", async () => {
    const clock = new ManualClock();
    const { server, bob } = await setup(start, { clock });
    const first = await sync(bob);
    const abort = new AbortController();

    const pending = server.fetch(`/_matrix/client/v3/sync?${since(first.next_batch, "timeout=60000")}`, {
      headers: { authorization: `Bearer ${bob.accessToken}` },
      signal: abort.signal,
    });
    await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1));
    await clock.advance(5);
    expect(clock.pendingSleeps).toBe(1);
    abort.abort();
    // The request settles (how the in-process fetch reports an abort is its own business) and the
    // server's long-poll lets go of its timer and subscriptions; over a socket the server learns
    // of the abort when the connection closes, a moment later.
    await pending.then(
      (res) => res.body?.cancel(),
      () => undefined,
    );
    await clock.advance(0);
    await vi.waitFor(() => expect(clock.pendingSleeps).toBe(0));
  });

  it("answers an initial sync at once whatever the timeout", async () => {
    const clock = new ManualClock();
    const { alice } = await setup(start, { clock });

    expect((await sync(alice, "timeout=60000")).next_batch).toMatch(/^s/);
  });
});
