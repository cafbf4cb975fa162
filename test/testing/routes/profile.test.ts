import { describe, expect, it } from "vitest";
import { harnessesOn, type StartHarness, transports } from "../support/transports.js";
import { registerUser } from "./e2ee-test-users.js";
import { sharedRoom } from "./room-support.js";

async function setup(start: StartHarness) {
  const server = await start();
  const mock = server.homeserver;
  return { mock, alice: await registerUser(server, "alice"), bob: await registerUser(server, "bob") };
}

describe.each(transports)("profiles (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("starts every user with their localpart as display name", async () => {
    const { alice, bob } = await setup(start);

    expect((await alice.call("GET", `profile/${encodeURIComponent(bob.userId)}`)).body).toEqual({
      displayname: "bob",
    });
    expect((await alice.call("GET", "profile/%40nobody%3Alocalhost")).body.errcode).toBe("M_NOT_FOUND");
  });

  it("changes the display name and updates the member event in every joined room", async () => {
    const { mock, alice, bob } = await setup(start);
    const roomId = await sharedRoom(alice, bob);
    const me = encodeURIComponent(bob.userId);

    expect((await bob.call("PUT", `profile/${me}/displayname`, { displayname: "Robert" })).status).toBe(200);
    expect((await alice.call("GET", `profile/${me}/displayname`)).body).toEqual({ displayname: "Robert" });
    expect(mock.state.rooms.stateEvent(roomId, "m.room.member", bob.userId)?.content).toEqual({
      membership: "join",
      displayname: "Robert",
    });
  });

  it("sets and reads the avatar url, and refuses to edit someone else's profile", async () => {
    const { alice, bob } = await setup(start);
    const me = encodeURIComponent(alice.userId);

    expect((await alice.call("GET", `profile/${me}/avatar_url`)).status).toBe(404);
    await alice.call("PUT", `profile/${me}/avatar_url`, { avatar_url: "mxc://localhost/abc" });
    expect((await bob.call("GET", `profile/${me}`)).body).toEqual({
      displayname: "alice",
      avatar_url: "mxc://localhost/abc",
    });
    // Synapse's refusal is a 400 with M_FORBIDDEN.
    expect(await bob.call("PUT", `profile/${me}/displayname`, { displayname: "x" })).toMatchObject({
      status: 400,
      body: { errcode: "M_FORBIDDEN" },
    });
    const tooLong = await alice.call("PUT", `profile/${me}/displayname`, { displayname: "x".repeat(257) });
    expect(tooLong.status).toBe(400);
    expect((await alice.call("PUT", `profile/${me}/displayname`, { displayname: 5 })).body.errcode).toBe(
      "M_INVALID_PARAM",
    );
    expect((await alice.call("PUT", `profile/${me}/displayname`, {})).body.errcode).toBe("M_MISSING_PARAM");
  });
});
