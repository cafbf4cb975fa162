import { describe, expect, it } from "vitest";
import { harnessesOn, transports } from "../support/transports.js";
import { registerUser } from "./e2ee-test-users.js";

describe.each(transports)("GET pushrules/ (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("answers the predefined rule set, with the user's own id and localpart in it", async () => {
    const alice = await registerUser(await start(), "alice");

    const res = await alice.call("GET", "pushrules/");
    const global = (
      res.body as { global: Record<string, { rule_id: string; conditions?: unknown[]; pattern?: string }[]> }
    ).global;

    expect(Object.keys(global).sort()).toEqual(["content", "override", "room", "sender", "underride"]);
    expect(global.override!.map((r) => r.rule_id)).toContain(".m.rule.invite_for_me");
    expect(JSON.stringify(global.override!.find((r) => r.rule_id === ".m.rule.invite_for_me"))).toContain(
      alice.userId,
    );
    expect(global.content![0]?.pattern).toBe("alice");
    expect(global.underride!.map((r) => r.rule_id)).toEqual([
      ".m.rule.call",
      ".m.rule.encrypted_room_one_to_one",
      ".m.rule.room_one_to_one",
      ".m.rule.message",
      ".m.rule.encrypted",
    ]);
    expect((await alice.call("GET", "pushrules/global/")).body).toEqual(global);
  });
});
