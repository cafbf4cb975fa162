import { describe, expect, it } from "vitest";
import { harnessesOn, type StartHarness, transports } from "../support/transports.js";
import { registerUser } from "./e2ee-test-users.js";

async function setup(start: StartHarness) {
  const server = await start();
  return { alice: await registerUser(server, "alice"), bob: await registerUser(server, "bob") };
}

describe.each(transports)("user filters (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("stores a filter as sent and hands out ids counting from 0", async () => {
    const { alice } = await setup(start);
    const filter = { room: { timeline: { limit: 5, unread_thread_notifications: true } }, custom: [1] };
    const me = encodeURIComponent(alice.userId);

    const first = await alice.call("POST", `user/${me}/filter`, filter);
    const second = await alice.call("POST", `user/${me}/filter`, {});

    expect(first.body).toEqual({ filter_id: "0" });
    expect(second.body).toEqual({ filter_id: "1" });
    expect((await alice.call("GET", `user/${me}/filter/0`)).body).toEqual(filter);
  });

  it("keeps filters private to their owner", async () => {
    const { alice, bob } = await setup(start);
    const aliceId = encodeURIComponent(alice.userId);
    await alice.call("POST", `user/${aliceId}/filter`, {});

    expect((await bob.call("GET", `user/${aliceId}/filter/0`)).status).toBe(403);
    expect((await bob.call("POST", `user/${aliceId}/filter`, {})).status).toBe(403);
    expect((await bob.call("GET", `user/${encodeURIComponent(bob.userId)}/filter/0`)).body.errcode).toBe(
      "M_NOT_FOUND",
    );
  });

  it("answers 400 for a filter id that is not a number, and M_NOT_JSON for a body that is not JSON", async () => {
    const { alice } = await setup(start);
    const me = encodeURIComponent(alice.userId);

    expect((await alice.call("GET", `user/${me}/filter/abc`)).status).toBe(400);
    expect((await alice.call("POST", `user/${me}/filter`, "{nope")).body.errcode).toBe("M_NOT_JSON");
  });
});
