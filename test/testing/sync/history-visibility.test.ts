import { describe, expect, it } from "vitest";
import { RoomStore } from "../../../src/testing/state/room-store.js";
import { canSeeEvent } from "../../../src/testing/sync/history-visibility.js";

const ALICE = "@alice:localhost";
const BOB = "@bob:localhost";

let n = 0;
function room(visibility: string) {
  const rooms = new RoomStore();
  rooms.createRoom("!r");
  const add = (type: string, sender: string, content: Record<string, unknown>, stateKey?: string) =>
    rooms.append(
      "!r",
      { type, sender, content, originServerTs: 0, ...(stateKey !== undefined ? { stateKey } : {}) },
      `$${n++}`,
    );
  add("m.room.member", ALICE, { membership: "join" }, ALICE);
  add("m.room.history_visibility", ALICE, { history_visibility: visibility }, "");
  const early = add("m.room.message", ALICE, { body: "early" });
  const invite = add("m.room.member", ALICE, { membership: "invite" }, BOB);
  const whileInvited = add("m.room.message", ALICE, { body: "while invited" });
  const join = add("m.room.member", BOB, { membership: "join" }, BOB);
  const whileJoined = add("m.room.message", ALICE, { body: "while joined" });
  const leave = add("m.room.member", BOB, { membership: "leave" }, BOB);
  const afterLeave = add("m.room.message", ALICE, { body: "after leave" });
  const seen = (e: typeof early) => canSeeEvent(rooms, BOB, e);
  return { seen, early, invite, whileInvited, join, whileJoined, leave, afterLeave };
}

describe("canSeeEvent", () => {
  it("shows a joined-visibility room only from the join, plus the user's own leave", () => {
    const r = room("joined");
    expect(
      [r.early, r.invite, r.whileInvited, r.join, r.whileJoined, r.leave, r.afterLeave].map(r.seen),
    ).toEqual([false, false, false, true, true, true, false]);
  });

  it("shows an invited-visibility room from the invite on", () => {
    const r = room("invited");
    expect([r.early, r.invite, r.whileInvited, r.whileJoined, r.afterLeave].map(r.seen)).toEqual([
      false,
      true,
      true,
      true,
      false,
    ]);
  });

  it("shows a shared room's history only while the user is joined", () => {
    const r = room("shared");
    // Bob has left: what he did not see as a member is hidden again.
    expect([r.early, r.whileInvited, r.whileJoined, r.afterLeave].map(r.seen)).toEqual([
      false,
      false,
      true,
      false,
    ]);
  });

  it("shows a world-readable room to anyone", () => {
    const r = room("world_readable");
    expect([r.early, r.afterLeave].map(r.seen)).toEqual([true, true]);
  });
});
