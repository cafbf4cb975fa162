import { describe, expect, it, vi } from "vitest";
import { ManualClock } from "../../../src/testing/index.js";
import { SLIDING_SYNC_PATH } from "../../../src/testing/routes/sliding-sync.js";
import {
  call,
  harnessesOn,
  register,
  type StartHarness,
  startHarness,
  type TestUser,
  transports,
} from "../support/transports.js";
import { registerUser } from "./e2ee-test-users.js";
import {
  appendEvent,
  createRoomInStore,
  type SlidingReply,
  sendMessage,
  slide,
} from "./sliding-sync-helpers.js";

async function setup(start: StartHarness) {
  const clock = new ManualClock();
  const server = await start({ clock });
  const mock = server.homeserver;
  const alice = await registerUser(server, "alice");
  const bob = await registerUser(server, "bob");
  return { clock, server, mock, alice, bob };
}

type RoomWire = Record<string, unknown> & {
  timeline?: { event_id: string; type: string; content: { body?: string; membership?: string } }[];
};

const rooms = (res: SlidingReply) => res.body.rooms as Record<string, RoomWire>;
const bodies = (room: RoomWire | undefined) => (room?.timeline ?? []).map((e) => e.content.body);
const list = (ranges: [number, number][] | undefined, extra: Record<string, unknown> = {}) => ({
  ...(ranges ? { ranges } : {}),
  required_state: [],
  timeline_limit: 1,
  ...extra,
});

describe.each(transports)("sliding sync room lists (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("counts the user's rooms, newest activity first, and sends the ones in range", async () => {
    const { server, mock, alice, bob } = await setup(start);
    createRoomInStore(mock, "!old:localhost", alice.userId, { members: [bob.userId] });
    createRoomInStore(mock, "!mid:localhost", alice.userId);
    createRoomInStore(mock, "!new:localhost", alice.userId);
    createRoomInStore(mock, "!not-mine:localhost", bob.userId);
    sendMessage(mock, "!old:localhost", bob.userId, "bump");

    const res = await slide(server, alice, { lists: { all: list([[0, 1]]) } });

    expect(res.body.lists).toEqual({
      all: { count: 3, ops: [{ op: "SYNC", range: [0, 1], room_ids: ["!old:localhost", "!new:localhost"] }] },
    });
    expect(Object.keys(rooms(res)).sort()).toEqual(["!new:localhost", "!old:localhost"]);
  });

  it("reports only the count of a list without ranges, and sends none of its rooms", async () => {
    const { server, mock, alice } = await setup(start);
    createRoomInStore(mock, "!a:localhost", alice.userId);

    const res = await slide(server, alice, { lists: { all: list(undefined) } });

    expect(res.body.lists).toEqual({ all: { count: 1, ops: [] } });
    expect(rooms(res)).toEqual({});
  });

  it("sends a room the first time with initial, name, counts, required_state and the newest timeline_limit events", async () => {
    const { server, mock, alice, bob } = await setup(start);
    createRoomInStore(mock, "!r:localhost", alice.userId, {
      members: [bob.userId],
      encrypted: true,
      name: "Secret plans",
    });
    sendMessage(mock, "!r:localhost", bob.userId, "one");
    sendMessage(mock, "!r:localhost", bob.userId, "two");
    const three = sendMessage(mock, "!r:localhost", bob.userId, "three");

    const res = await slide(server, alice, {
      lists: {
        all: list([[0, 0]], {
          timeline_limit: 2,
          required_state: [
            ["m.room.encryption", ""],
            ["m.room.member", "$ME"],
          ],
        }),
      },
    });
    const room = rooms(res)["!r:localhost"]!;

    expect(room).toMatchObject({
      initial: true,
      name: "Secret plans",
      joined_count: 2,
      invited_count: 0,
      notification_count: 3,
      highlight_count: 0,
      bump_stamp: three.position,
      limited: true,
      num_live: 0,
      prev_batch: `t${three.position - 2}`,
    });
    expect(bodies(room)).toEqual(["two", "three"]);
    expect(
      (room.required_state as { type: string; state_key: string }[]).map((e) => [e.type, e.state_key]),
    ).toEqual([
      ["m.room.member", alice.userId],
      ["m.room.encryption", ""],
    ]);
    expect(room.timeline![0]).not.toHaveProperty("room_id");
  });

  it("sends a room again only when something happened in it, with just the new events", async () => {
    const { server, mock, alice, bob } = await setup(start);
    createRoomInStore(mock, "!r:localhost", alice.userId, { members: [bob.userId] });
    createRoomInStore(mock, "!quiet:localhost", alice.userId);
    const body = { lists: { all: list([[0, 9]], { timeline_limit: 5 }) } };
    const first = await slide(server, alice, body);

    const nothing = await slide(server, alice, body, { pos: first.body.pos as string });
    sendMessage(mock, "!r:localhost", bob.userId, "news");
    const news = await slide(server, alice, body, { pos: nothing.body.pos as string });

    expect(rooms(nothing)).toEqual({});
    expect(Object.keys(rooms(news))).toEqual(["!r:localhost"]);
    const room = rooms(news)["!r:localhost"]!;
    expect(room).not.toHaveProperty("initial");
    expect(room).toMatchObject({ num_live: 1, limited: false, notification_count: 1 });
    expect(bodies(room)).toEqual(["news"]);
  });

  it("marks an incremental timeline limited when more happened than timeline_limit", async () => {
    const { server, mock, alice, bob } = await setup(start);
    createRoomInStore(mock, "!r:localhost", alice.userId, { members: [bob.userId] });
    const body = { lists: { all: list([[0, 0]], { timeline_limit: 2 }) } };
    const first = await slide(server, alice, body);

    for (const text of ["a", "b", "c"]) sendMessage(mock, "!r:localhost", bob.userId, text);
    const res = await slide(server, alice, body, { pos: first.body.pos as string });

    expect(rooms(res)["!r:localhost"]).toMatchObject({ limited: true, num_live: 2 });
    expect(bodies(rooms(res)["!r:localhost"])).toEqual(["b", "c"]);
  });

  it("sends an invite with stripped invite_state and no timeline, and the room in full once joined", async () => {
    const { server, mock, alice, bob } = await setup(start);
    createRoomInStore(mock, "!dm:localhost", bob.userId, { encrypted: true, name: "Bob" });
    appendEvent(
      mock,
      "!dm:localhost",
      bob.userId,
      "m.room.member",
      { membership: "invite", is_direct: true },
      alice.userId,
    );
    const body = { lists: { all: list([[0, 9]]) } };

    const invited = await slide(server, alice, body);
    const again = await slide(server, alice, body, { pos: invited.body.pos as string });
    appendEvent(mock, "!dm:localhost", alice.userId, "m.room.member", { membership: "join" }, alice.userId);
    const joined = await slide(server, alice, body, { pos: again.body.pos as string });

    const invite = rooms(invited)["!dm:localhost"]!;
    expect(invite).toMatchObject({ initial: true, name: "Bob", is_dm: true });
    expect(invite).not.toHaveProperty("timeline");
    expect((invite.invite_state as { type: string }[]).map((e) => e.type)).toEqual([
      "m.room.create",
      "m.room.encryption",
      "m.room.name",
      "m.room.member",
    ]);
    expect(invite.invite_state).toContainEqual({
      type: "m.room.member",
      state_key: alice.userId,
      sender: bob.userId,
      content: { membership: "invite", is_direct: true },
    });
    expect(rooms(again)).toEqual({});
    expect(rooms(joined)["!dm:localhost"]).toMatchObject({ initial: true, joined_count: 2 });
  });

  it("filters lists by is_invite and is_encrypted", async () => {
    const { server, mock, alice, bob } = await setup(start);
    createRoomInStore(mock, "!plain:localhost", alice.userId);
    createRoomInStore(mock, "!secret:localhost", alice.userId, { encrypted: true });
    createRoomInStore(mock, "!invite:localhost", bob.userId, { invited: [alice.userId] });

    const res = await slide(server, alice, {
      lists: {
        invites: list([[0, 9]], { filters: { is_invite: true } }),
        encrypted: list([[0, 9]], { filters: { is_encrypted: true, is_invite: false } }),
      },
    });

    expect(res.body.lists).toEqual({
      invites: { count: 1, ops: [{ op: "SYNC", range: [0, 9], room_ids: ["!invite:localhost"] }] },
      encrypted: { count: 1, ops: [{ op: "SYNC", range: [0, 9], room_ids: ["!secret:localhost"] }] },
    });
  });

  it("sends a subscribed room outside every range, and ignores a subscription to a room the user is not in", async () => {
    const { server, mock, alice, bob } = await setup(start);
    createRoomInStore(mock, "!far:localhost", alice.userId);
    createRoomInStore(mock, "!near:localhost", alice.userId);
    createRoomInStore(mock, "!bobs:localhost", bob.userId);

    const res = await slide(server, alice, {
      lists: { top: list([[0, 0]]) },
      room_subscriptions: {
        "!far:localhost": { required_state: [["*", "*"]], timeline_limit: 0 },
        "!bobs:localhost": { required_state: [], timeline_limit: 5 },
      },
    });

    expect(Object.keys(rooms(res)).sort()).toEqual(["!far:localhost", "!near:localhost"]);
    const far = rooms(res)["!far:localhost"]!;
    expect(far).not.toHaveProperty("timeline");
    expect((far.required_state as { type: string }[]).map((e) => e.type)).toEqual([
      "m.room.create",
      "m.room.member",
    ]);
  });

  it("tells the user once that they left a room, with their leave in the timeline", async () => {
    const { server, mock, alice, bob } = await setup(start);
    createRoomInStore(mock, "!r:localhost", bob.userId, { members: [alice.userId] });
    const body = { lists: { all: list([[0, 9]]) } };
    const first = await slide(server, alice, body);

    appendEvent(mock, "!r:localhost", alice.userId, "m.room.member", { membership: "leave" }, alice.userId);
    sendMessage(mock, "!r:localhost", bob.userId, "after you left");
    const left = await slide(server, alice, body, { pos: first.body.pos as string });
    const later = await slide(server, alice, body, { pos: left.body.pos as string });

    const timeline = rooms(left)["!r:localhost"]!.timeline ?? [];
    expect(timeline.map((e) => [e.type, e.content.membership])).toEqual([["m.room.member", "leave"]]);
    expect(later.body.lists).toEqual({
      all: { count: 0, ops: [{ op: "SYNC", range: [0, 9], room_ids: [] }] },
    });
  });

  it("counts notifications from others after the user's own latest message, highlighting mentions", async () => {
    const { server, mock, alice, bob } = await setup(start);
    createRoomInStore(mock, "!r:localhost", alice.userId, { members: [bob.userId] });
    sendMessage(mock, "!r:localhost", bob.userId, "before");
    sendMessage(mock, "!r:localhost", alice.userId, "mine");
    sendMessage(mock, "!r:localhost", bob.userId, "hello");
    appendEvent(mock, "!r:localhost", bob.userId, "m.room.message", {
      body: "hey alice",
      "m.mentions": { user_ids: [alice.userId] },
    });

    const res = await slide(server, alice, { lists: { all: list([[0, 0]]) } });

    expect(rooms(res)["!r:localhost"]).toMatchObject({ notification_count: 2, highlight_count: 1 });
  });

  it("counts unread messages as classic /sync does: a notice does not notify, an @room mention highlights", async () => {
    const { server, mock, alice, bob } = await setup(start);
    createRoomInStore(mock, "!r:localhost", alice.userId, { members: [bob.userId] });
    appendEvent(mock, "!r:localhost", bob.userId, "m.room.message", { msgtype: "m.notice", body: "bot" });
    appendEvent(mock, "!r:localhost", bob.userId, "m.room.message", {
      body: "everyone",
      "m.mentions": { room: true },
    });

    const res = await slide(server, alice, { lists: { all: list([[0, 0]]) } });

    expect(rooms(res)["!r:localhost"]).toMatchObject({ notification_count: 1, highlight_count: 1 });
    expect(mock.state.rooms.unreadCounts("!r:localhost", alice.userId)).toEqual({
      notification_count: 1,
      highlight_count: 1,
    });
  });

  it("lazy-loads the members who sent the timeline events with $LAZY", async () => {
    const { server, mock, alice, bob } = await setup(start);
    const carol = await registerUser(server, "carol");
    createRoomInStore(mock, "!r:localhost", alice.userId, { members: [bob.userId, carol.userId] });
    sendMessage(mock, "!r:localhost", carol.userId, "old");
    sendMessage(mock, "!r:localhost", bob.userId, "latest");

    const res = await slide(server, alice, {
      lists: { all: list([[0, 0]], { required_state: [["m.room.member", "$LAZY"]], timeline_limit: 1 }) },
    });

    const members = (rooms(res)["!r:localhost"]!.required_state as { state_key: string }[]).map(
      (e) => e.state_key,
    );
    expect(members.sort()).toEqual([alice.userId, bob.userId].sort());
  });

  it("ends a long-poll when a message arrives in one of the user's rooms, but not in another room", async () => {
    const { server, mock, clock, alice, bob } = await setup(start);
    createRoomInStore(mock, "!mine:localhost", alice.userId, { members: [bob.userId] });
    createRoomInStore(mock, "!other:localhost", bob.userId);
    const body = { lists: { all: list([[0, 9]]) } };
    const pos = (await slide(server, alice, body)).body.pos as string;

    let settled = false;
    const pending = slide(server, alice, body, { pos, timeout: 30_000 }).finally(() => {
      settled = true;
    });
    await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1));
    sendMessage(mock, "!other:localhost", bob.userId, "elsewhere");
    await clock.advance(0);
    expect(settled).toBe(false);
    sendMessage(mock, "!mine:localhost", bob.userId, "for alice");
    const res = await pending;

    expect(bodies(rooms(res)["!mine:localhost"])).toEqual(["for alice"]);
    expect(rooms(res)).not.toHaveProperty("!other:localhost");
  });
});

describe("sliding sync over a real socket with the room routes", () => {
  it("carries an encrypted DM from invite to decrypted-ready messages, device lists and to-device", async () => {
    // The server's clock never moves, so a long-poll can end only because something happened.
    const clock = new ManualClock();
    const h = await startHarness("socket", { clock });
    try {
      const alice = await register(h, "alice");
      const bob = await register(h, "bob");
      const request = {
        conn_id: "main",
        lists: { all: { ranges: [[0, 9]], required_state: [["m.room.encryption", ""]], timeline_limit: 2 } },
        extensions: { e2ee: { enabled: true }, to_device: { enabled: true } },
      };
      const sync = async (user: TestUser, pos?: string, timeout?: number) => {
        const query = new URLSearchParams();
        if (pos !== undefined) query.set("pos", pos);
        if (timeout !== undefined) query.set("timeout", String(timeout));
        const res = await call(h, "POST", `${SLIDING_SYNC_PATH}?${query}`, {
          token: user.token,
          body: request,
        });
        expect(res.status).toBe(200);
        return res;
      };
      const bobFirst = await sync(bob);

      const created = await call(h, "POST", "/_matrix/client/v3/createRoom", {
        token: alice.token,
        body: {
          invite: [bob.userId],
          is_direct: true,
          initial_state: [
            { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
          ],
        },
      });
      const roomId = created.body.room_id as string;
      const invited = await sync(bob, bobFirst.body.pos as string);
      const joinRes = await call(h, "POST", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/join`, {
        token: bob.token,
        body: {},
      });
      const joined = await sync(bob, invited.body.pos as string);
      const aliceFirst = await sync(alice);

      // Bob waits; Alice's message ends his long-poll, whose timeout never comes.
      const waiting = sync(bob, joined.body.pos as string, 20_000);
      await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1), { interval: 1 });
      const sent = await call(
        h,
        "PUT",
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.encrypted/txn1`,
        {
          token: alice.token,
          body: {
            algorithm: "m.megolm.v1.aes-sha2",
            ciphertext: "opaque",
            session_id: "S",
            sender_key: "K",
            device_id: alice.deviceId,
          },
        },
      );
      // Sending the message woke the long-poll: the clock has no sleeper left.
      expect(clock.pendingSleeps).toBe(0);
      const message = await waiting;
      const aliceEcho = await sync(alice, aliceFirst.body.pos as string);

      const inviteRoom = (invited.body.rooms as Record<string, Record<string, unknown>>)[roomId]!;
      expect(inviteRoom).toMatchObject({ initial: true, is_dm: true });
      expect(inviteRoom.invite_state).toEqual(
        expect.arrayContaining([expect.objectContaining({ type: "m.room.encryption" })]),
      );
      expect(joinRes.status).toBe(200);
      const joinedRoom = (joined.body.rooms as Record<string, Record<string, unknown>>)[roomId]!;
      expect(joinedRoom).toMatchObject({ initial: true, joined_count: 2 });
      expect(joinedRoom.required_state).toEqual([expect.objectContaining({ type: "m.room.encryption" })]);
      // Joining a room with Alice puts her in Bob's device_lists.changed.
      expect((joined.body.extensions as Record<string, Record<string, unknown>>).e2ee!.device_lists).toEqual({
        changed: [alice.userId],
        left: [],
      });
      const bobTimeline = ((message.body.rooms as Record<string, Record<string, unknown>>)[roomId]!
        .timeline ?? []) as Record<string, unknown>[];
      expect(bobTimeline.map((e) => [e.type, e.event_id])).toEqual([
        ["m.room.encrypted", sent.body.event_id],
      ]);
      expect(bobTimeline[0]!.unsigned).not.toHaveProperty("transaction_id");
      const aliceTimeline = ((aliceEcho.body.rooms as Record<string, Record<string, unknown>>)[roomId]!
        .timeline ?? []) as Record<string, Record<string, unknown>>[];
      expect(aliceTimeline.at(-1)!.unsigned).toMatchObject({ transaction_id: "txn1" });

      // prev_batch is a /messages token: paging back from it reaches the events before the timeline.
      const prevBatch = (aliceFirst.body.rooms as Record<string, Record<string, unknown>>)[roomId]!
        .prev_batch as string;
      const older = await call(
        h,
        "GET",
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&from=${prevBatch}&limit=50`,
        { token: alice.token },
      );
      const firstTimeline = (aliceFirst.body.rooms as Record<string, Record<string, unknown>>)[roomId]!
        .timeline as Record<string, unknown>[];
      const olderEvents = older.body.chunk as Record<string, unknown>[];
      expect((aliceFirst.body.rooms as Record<string, Record<string, unknown>>)[roomId]!.limited).toBe(true);
      expect(firstTimeline).toHaveLength(2);
      expect(olderEvents.at(-1)!.type).toBe("m.room.create");
      const timelineIds = new Set(firstTimeline.map((e) => e.event_id));
      expect(olderEvents.filter((e) => timelineIds.has(e.event_id))).toEqual([]);
    } finally {
      await h.close();
    }
  });
});
