import { describe, expect, it } from "vitest";
import { ManualClock, type MockHomeserverOptions } from "../../../src/testing/index.js";
import { ROOM_EVENT_TRANSACTION_TTL_MS } from "../../../src/testing/state/transaction-cache.js";
import { harnessesOn, type StartHarness, transports } from "../support/transports.js";
import { registerUser } from "./e2ee-test-users.js";
import { createRoom, invite, join, leave, sendText, sharedRoom } from "./room-support.js";

async function setup(start: StartHarness, options: MockHomeserverOptions = {}) {
  const server = await start(options);
  const mock = server.homeserver;
  const alice = await registerUser(server, "alice");
  const bob = await registerUser(server, "bob");
  return { server, mock, alice, bob };
}

const path = (roomId: string, rest: string) => `rooms/${encodeURIComponent(roomId)}/${rest}`;

describe.each(transports)("POST createRoom (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("writes Synapse's initial state in order, with initial_state, name and invites last", async () => {
    const { mock, alice, bob } = await setup(start);
    const roomId = await createRoom(alice, {
      preset: "trusted_private_chat",
      name: "Secrets",
      is_direct: true,
      invite: [bob.userId],
      initial_state: [
        { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
      ],
    });

    expect(roomId).toMatch(/^![A-Za-z]{18}:localhost$/);
    const timeline = mock.state.rooms.timeline(roomId, 0, mock.state.rooms.position, 100).events;
    expect(timeline.map((e) => e.type)).toEqual([
      "m.room.create",
      "m.room.member",
      "m.room.power_levels",
      "m.room.join_rules",
      "m.room.history_visibility",
      "m.room.guest_access",
      "m.room.encryption",
      "m.room.name",
      "m.room.member",
    ]);
    const rooms = mock.state.rooms;
    expect(rooms.stateEvent(roomId, "m.room.create", "")?.content).toEqual({
      room_version: "10",
      creator: alice.userId,
    });
    expect(rooms.stateEvent(roomId, "m.room.join_rules", "")?.content).toEqual({ join_rule: "invite" });
    expect(rooms.stateEvent(roomId, "m.room.history_visibility", "")?.content).toEqual({
      history_visibility: "shared",
    });
    // A trusted private chat makes the invitees admins too.
    const pl = rooms.stateEvent(roomId, "m.room.power_levels", "")?.content as {
      users: Record<string, number>;
      invite: number;
    };
    expect(pl.users).toEqual({ [alice.userId]: 100, [bob.userId]: 100 });
    expect(pl.invite).toBe(0);
    expect(rooms.stateEvent(roomId, "m.room.member", bob.userId)?.content).toEqual({
      membership: "invite",
      is_direct: true,
      displayname: "bob",
    });
    expect(rooms.membership(roomId, alice.userId)).toBe("join");
  });

  it("makes a public room from visibility public, with an alias, and no guest access", async () => {
    const { mock, alice } = await setup(start);
    const res = await alice.call("POST", "createRoom", { visibility: "public", room_alias_name: "lobby" });

    expect(res.body.room_alias).toBe("#lobby:localhost");
    const roomId = res.body.room_id as string;
    expect(mock.state.rooms.stateEvent(roomId, "m.room.join_rules", "")?.content).toEqual({
      join_rule: "public",
    });
    expect(mock.state.rooms.stateEvent(roomId, "m.room.canonical_alias", "")?.content).toEqual({
      alias: "#lobby:localhost",
    });
    expect(mock.state.rooms.stateEvent(roomId, "m.room.guest_access", "")).toBeUndefined();
    expect((await alice.call("POST", "createRoom", { room_alias_name: "lobby" })).body.errcode).toBe(
      "M_ROOM_IN_USE",
    );
  });

  it("leaves creator out of m.room.create from room version 11", async () => {
    const { mock, alice } = await setup(start, { profile: "tuwunel" });
    const roomId = await createRoom(alice);

    expect(mock.state.rooms.stateEvent(roomId, "m.room.create", "")?.content).toEqual({ room_version: "11" });
  });

  it("refuses unknown room versions, presets and malformed invitees", async () => {
    const { alice } = await setup(start);

    expect((await alice.call("POST", "createRoom", { room_version: "99" })).body.errcode).toBe(
      "M_UNSUPPORTED_ROOM_VERSION",
    );
    expect((await alice.call("POST", "createRoom", { preset: "party" })).body.errcode).toBe("M_BAD_JSON");
    const bad = await alice.call("POST", "createRoom", { invite: ["bob"] });
    expect(bad).toMatchObject({ status: 400, body: { errcode: "M_UNKNOWN" } });
  });
});

describe.each(transports)("PUT rooms/{roomId}/send/{eventType}/{txnId} (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("returns the same event for a repeated transaction id from the same device only", async () => {
    const { server, mock, alice } = await setup(start);
    const roomId = await createRoom(alice);
    const first = await alice.call("PUT", path(roomId, "send/m.room.message/same"), { body: "one" });
    const again = await alice.call("PUT", path(roomId, "send/m.room.message/same"), { body: "two" });
    const { loginDevice } = await import("./e2ee-test-users.js");
    const laptop = await loginDevice(server, "alice");
    const other = await laptop.call("PUT", path(roomId, "send/m.room.message/same"), { body: "three" });

    expect(first.status).toBe(200);
    expect(again.body.event_id).toBe(first.body.event_id);
    expect(other.body.event_id).not.toBe(first.body.event_id);
    expect(mock.state.rooms.event(first.body.event_id as string)?.content).toEqual({ body: "one" });
  });

  it("keeps a transaction id for 24 hours, as Synapse's event_txn_id_device_id rows, then sends anew", async () => {
    const clock = new ManualClock();
    const { mock, alice } = await setup(start, { clock });
    const roomId = await createRoom(alice);
    const send = (body: string) => alice.call("PUT", path(roomId, "send/m.room.message/daily"), { body });

    const first = await send("one");
    await clock.advance(ROOM_EVENT_TRANSACTION_TTL_MS);
    const lastMoment = await send("two");
    const txnsBefore = mock.state.rooms.transactionCount;
    await clock.advance(1);
    const nextDay = await send("three");

    expect(lastMoment.body.event_id).toBe(first.body.event_id);
    expect(nextDay.body.event_id).not.toBe(first.body.event_id);
    expect(mock.state.rooms.event(nextDay.body.event_id as string)?.content).toEqual({ body: "three" });
    // The expired id was forgotten before the new one was stored.
    expect([txnsBefore, mock.state.rooms.transactionCount]).toEqual([1, 1]);
  });

  it("refuses senders who are not joined, invited ones included", async () => {
    const { alice, bob } = await setup(start);
    const roomId = await createRoom(alice);
    await invite(alice, roomId, bob);

    const res = await bob.call("PUT", path(roomId, "send/m.room.message/t"), { body: "hi" });
    expect(res).toMatchObject({ status: 403, body: { errcode: "M_FORBIDDEN" } });
    expect(String(res.body.error)).toContain("not in room");
  });

  it("answers 403 for a room that does not exist", async () => {
    const { alice } = await setup(start);

    expect((await alice.call("PUT", path("!nope:localhost", "send/m.room.message/t"), {})).status).toBe(403);
  });
});

describe.each(transports)("room state (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("reads and writes state, with an empty state key written as a trailing slash", async () => {
    const { alice } = await setup(start);
    const roomId = await createRoom(alice);

    const put = await alice.call("PUT", path(roomId, "state/m.room.topic/"), { topic: "cats" });
    const get = await alice.call("GET", path(roomId, "state/m.room.topic"));
    const getSlash = await alice.call("GET", path(roomId, "state/m.room.topic/"));

    expect(put.status).toBe(200);
    expect(get.body).toEqual({ topic: "cats" });
    expect(getSlash.body).toEqual({ topic: "cats" });
    const missing = await alice.call("GET", path(roomId, "state/m.room.avatar"));
    expect(missing).toMatchObject({ status: 404, body: { errcode: "M_NOT_FOUND" } });
  });

  it("does not send an unchanged state event again", async () => {
    const { alice } = await setup(start);
    const roomId = await createRoom(alice);

    const a = await alice.call("PUT", path(roomId, "state/m.room.topic"), { topic: "x" });
    const b = await alice.call("PUT", path(roomId, "state/m.room.topic"), { topic: "x" });
    expect(b.body.event_id).toBe(a.body.event_id);
  });

  it("enforces power levels: a default member may not rename the room", async () => {
    const { alice, bob } = await setup(start);
    const roomId = await sharedRoom(alice, bob);

    const res = await bob.call("PUT", path(roomId, "state/m.room.name"), { name: "mine" });
    expect(res).toMatchObject({ status: 403, body: { errcode: "M_FORBIDDEN" } });
    expect(String(res.body.error)).toContain("user_level (0) < send_level (50)");
  });

  it("refuses state keys that name another user", async () => {
    const { alice, bob } = await setup(start);
    const roomId = await createRoom(alice);

    const res = await alice.call("PUT", path(roomId, `state/m.custom/${encodeURIComponent(bob.userId)}`), {});
    expect(res.status).toBe(403);
  });

  it("lists the whole state with room ids, and gives a member who left the state at their leave", async () => {
    const { alice, bob } = await setup(start);
    const roomId = await sharedRoom(alice, bob);
    await leave(bob, roomId);
    await alice.call("PUT", path(roomId, "state/m.room.topic"), { topic: "after bob" });

    const forAlice = (await alice.call("GET", path(roomId, "state"))).body as unknown as {
      type: string;
      room_id: string;
    }[];
    const forBob = (await bob.call("GET", path(roomId, "state"))).body as unknown as { type: string }[];

    expect(forAlice.map((e) => e.type)).toContain("m.room.topic");
    expect(forAlice.every((e) => e.room_id === roomId)).toBe(true);
    expect(forBob.map((e) => e.type)).not.toContain("m.room.topic");
  });
});

describe.each(transports)("members and joined_members (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("filters members by membership and not_membership", async () => {
    const { server, alice, bob } = await setup(start);
    const carol = await registerUser(server, "carol");
    const roomId = await sharedRoom(alice, bob);
    await invite(alice, roomId, carol);
    await leave(bob, roomId);

    const all = await alice.call("GET", path(roomId, "members"));
    const notLeft = await alice.call("GET", path(roomId, "members?not_membership=leave"));
    const invited = await alice.call("GET", path(roomId, "members?membership=invite"));
    const bad = await alice.call("GET", path(roomId, "members?membership=maybe"));

    const keys = (r: { body: Record<string, unknown> }) =>
      (r.body.chunk as { state_key: string }[]).map((e) => e.state_key).sort();
    expect(keys(all)).toEqual([alice.userId, bob.userId, carol.userId].sort());
    expect(keys(notLeft)).toEqual([alice.userId, carol.userId].sort());
    expect(keys(invited)).toEqual([carol.userId]);
    expect(bad).toMatchObject({ status: 400, body: { errcode: "M_INVALID_PARAM" } });
  });

  it("lists joined members with their display names, for members only", async () => {
    const { alice, bob } = await setup(start);
    const roomId = await sharedRoom(alice, bob);

    const res = await alice.call("GET", path(roomId, "joined_members"));
    expect(res.body).toEqual({
      joined: {
        [alice.userId]: { display_name: "alice", avatar_url: null },
        [bob.userId]: { display_name: "bob", avatar_url: null },
      },
    });
    await leave(bob, roomId);
    expect((await bob.call("GET", path(roomId, "joined_members"))).status).toBe(403);
  });
});

describe.each(transports)("GET rooms/{roomId}/messages (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("pages backwards newest first and forwards from a token, with end only while more remain", async () => {
    const { alice } = await setup(start);
    const roomId = await createRoom(alice);
    for (let i = 0; i < 5; i++) await sendText(alice, roomId, `m${i}`);

    const page1 = await alice.call("GET", path(roomId, "messages?dir=b&limit=3"));
    const bodies = (r: { body: Record<string, unknown> }) =>
      (r.body.chunk as { content: { body?: string } }[]).map((e) => e.content.body ?? "-");
    expect(bodies(page1)).toEqual(["m4", "m3", "m2"]);
    const page2 = await alice.call("GET", path(roomId, `messages?dir=b&limit=3&from=${page1.body.end}`));
    expect(bodies(page2)).toEqual(["m1", "m0", "-"]);
    const forward = await alice.call("GET", path(roomId, `messages?dir=f&limit=2&from=${page1.body.end}`));
    expect(bodies(forward)).toEqual(["m2", "m3"]);
    const all = await alice.call("GET", path(roomId, "messages?dir=b&limit=100"));
    expect(all.body.end).toBeUndefined();
  });

  it("hides events from before the join when history visibility is joined, and shows them when shared", async () => {
    const { alice, bob } = await setup(start);
    const hidden = await createRoom(alice, {
      initial_state: [{ type: "m.room.history_visibility", content: { history_visibility: "joined" } }],
    });
    const shared = await createRoom(alice);
    for (const roomId of [hidden, shared]) {
      await sendText(alice, roomId, "early");
      await invite(alice, roomId, bob);
      await join(bob, roomId);
      await sendText(alice, roomId, "late");
    }

    const texts = async (roomId: string) =>
      (
        (await bob.call("GET", path(roomId, "messages?dir=b&limit=50"))).body.chunk as {
          content: { body?: string };
        }[]
      )
        .map((e) => e.content.body)
        .filter((b) => b !== undefined);
    expect(await texts(hidden)).toEqual(["late"]);
    expect(await texts(shared)).toEqual(["late", "early"]);
  });

  it("refuses a malformed from token and a bad dir, and non-members", async () => {
    const { server, alice } = await setup(start);
    const roomId = await createRoom(alice);
    const carol = await registerUser(server, "carol");

    expect((await alice.call("GET", path(roomId, "messages?from=banana"))).status).toBe(400);
    expect((await alice.call("GET", path(roomId, "messages?dir=up"))).body.errcode).toBe("M_INVALID_PARAM");
    expect((await carol.call("GET", path(roomId, "messages"))).status).toBe(403);
  });
});
