import { describe, expect, it } from "vitest";
import { harnessesOn, type StartHarness, transports } from "../support/transports.js";
import { registerUser } from "./e2ee-test-users.js";
import { createRoom, invite, join, sharedRoom } from "./room-support.js";

async function setup(start: StartHarness) {
  const server = await start();
  const mock = server.homeserver;
  const alice = await registerUser(server, "alice");
  const bob = await registerUser(server, "bob");
  const carol = await registerUser(server, "carol");
  return { server, mock, alice, bob, carol };
}

const path = (roomId: string, rest: string) => `rooms/${encodeURIComponent(roomId)}/${rest}`;

describe.each(transports)("room membership (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("lets an invited user join by room id, answering the room id", async () => {
    const { mock, alice, bob } = await setup(start);
    const roomId = await createRoom(alice);
    await invite(alice, roomId, bob);

    const res = await bob.call("POST", path(roomId, "join"), {});
    expect(res).toEqual({ status: 200, body: { room_id: roomId } });
    expect(mock.state.rooms.membership(roomId, bob.userId)).toBe("join");
  });

  it("refuses to let an uninvited user into an invite-only room, and lets anyone into a public one", async () => {
    const { alice, bob } = await setup(start);
    const closed = await createRoom(alice);
    const open = await createRoom(alice, { preset: "public_chat", room_alias_name: "open" });

    const refused = await bob.call("POST", `join/${encodeURIComponent(closed)}`, {});
    expect(refused).toMatchObject({
      status: 403,
      body: { errcode: "M_FORBIDDEN", error: "You are not invited to this room." },
    });
    const byAlias = await bob.call("POST", `join/${encodeURIComponent("#open:localhost")}`, {});
    expect(byAlias.body).toEqual({ room_id: open });
  });

  it("answers 404 for unknown rooms and aliases", async () => {
    const { bob } = await setup(start);

    expect((await bob.call("POST", `join/${encodeURIComponent("!nope:localhost")}`, {})).status).toBe(404);
    expect((await bob.call("POST", `join/${encodeURIComponent("#nope:localhost")}`, {})).body.errcode).toBe(
      "M_NOT_FOUND",
    );
  });

  it("needs a joined inviter, and refuses to invite someone already joined", async () => {
    const { alice, bob, carol } = await setup(start);
    const roomId = await createRoom(alice);
    await invite(alice, roomId, bob);

    const byInvitee = await bob.call("POST", path(roomId, "invite"), { user_id: carol.userId });
    expect(byInvitee).toMatchObject({ status: 403, body: { errcode: "M_FORBIDDEN" } });
    await join(bob, roomId);
    const again = await alice.call("POST", path(roomId, "invite"), { user_id: bob.userId });
    expect(again).toMatchObject({ status: 403, body: { error: `${bob.userId} is already in the room.` } });
    const missing = await alice.call("POST", path(roomId, "invite"), {});
    expect(missing.body.errcode).toBe("M_MISSING_PARAM");
  });

  it("lets an invitee reject by leaving, and a member leave twice without error", async () => {
    const { server, mock, alice, bob } = await setup(start);
    const roomId = await createRoom(alice);
    await invite(alice, roomId, bob);

    expect((await bob.call("POST", path(roomId, "leave"), {})).status).toBe(200);
    expect(mock.state.rooms.membership(roomId, bob.userId)).toBe("leave");
    expect((await bob.call("POST", path(roomId, "leave"))).status).toBe(200);
    const stranger = await registerUser(server, "dave");
    expect((await stranger.call("POST", path(roomId, "leave"), {})).status).toBe(403);
  });

  it("enforces kick and ban power levels, and keeps banned users out", async () => {
    const { mock, alice, bob, carol } = await setup(start);
    const roomId = await sharedRoom(alice, bob, carol);

    expect((await bob.call("POST", path(roomId, "kick"), { user_id: carol.userId })).status).toBe(403);
    expect(
      (await alice.call("POST", path(roomId, "ban"), { user_id: carol.userId, reason: "spam" })).status,
    ).toBe(200);
    expect(mock.state.rooms.stateEvent(roomId, "m.room.member", carol.userId)?.content).toEqual({
      membership: "ban",
      reason: "spam",
    });
    expect((await carol.call("POST", path(roomId, "join"), {})).body.error).toBe(
      "You are banned from this room",
    );
    expect((await alice.call("POST", path(roomId, "invite"), { user_id: carol.userId })).status).toBe(403);
    expect((await alice.call("POST", path(roomId, "unban"), { user_id: carol.userId })).status).toBe(200);
    expect(mock.state.rooms.membership(roomId, carol.userId)).toBe("leave");
    expect((await alice.call("POST", path(roomId, "kick"), { user_id: carol.userId })).body.error).toBe(
      "The target user is not in the room",
    );
    expect((await alice.call("POST", path(roomId, "kick"), { user_id: bob.userId })).status).toBe(200);
    expect(mock.state.rooms.membership(roomId, bob.userId)).toBe("leave");
  });

  it("accepts a membership request without a body, as Synapse does", async () => {
    const { mock, alice, bob } = await setup(start);
    const roomId = await createRoom(alice);
    await invite(alice, roomId, bob);

    expect((await bob.call("POST", path(roomId, "join"))).status).toBe(200);
    expect(mock.state.rooms.membership(roomId, bob.userId)).toBe("join");
  });
});
