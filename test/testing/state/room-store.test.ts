import { describe, expect, it } from "vitest";
import { type NewEvent, RoomStore } from "../../../src/testing/state/room-store.js";

const ALICE = "@alice:localhost";
const BOB = "@bob:localhost";
const CAROL = "@carol:localhost";

let nextId = 0;
function member(store: RoomStore, roomId: string, userId: string, membership: string, sender = userId) {
  return store.append(
    roomId,
    { type: "m.room.member", stateKey: userId, sender, content: { membership }, originServerTs: 1 },
    `$m${nextId++}`,
  );
}
function message(store: RoomStore, roomId: string, sender: string, body: string) {
  const event: NewEvent = { type: "m.room.message", sender, content: { body }, originServerTs: 1 };
  return store.append(roomId, event, `$e${nextId++}`);
}
function roomWith(store: RoomStore, roomId: string, ...joined: string[]) {
  store.createRoom(roomId);
  for (const u of joined) member(store, roomId, u, "join");
}

describe("RoomStore", () => {
  it("orders every event of every room on one stream", () => {
    const store = new RoomStore();
    roomWith(store, "!a", ALICE);
    roomWith(store, "!b", BOB);
    const m = message(store, "!a", ALICE, "hi");

    expect(m.position).toBe(3);
    expect(store.position).toBe(3);
    expect(store.timeline("!a", 0, store.position, 10).events.map((e) => e.position)).toEqual([1, 3]);
  });

  it("keeps the current state and the state at an earlier position", () => {
    const store = new RoomStore();
    roomWith(store, "!a", ALICE);
    const first = store.append(
      "!a",
      { type: "m.room.name", stateKey: "", sender: ALICE, content: { name: "one" }, originServerTs: 1 },
      "$n1",
    );
    const second = store.append(
      "!a",
      { type: "m.room.name", stateKey: "", sender: ALICE, content: { name: "two" }, originServerTs: 1 },
      "$n2",
    );

    expect(store.stateEvent("!a", "m.room.name", "")?.content).toEqual({ name: "two" });
    expect(second.prevContent).toEqual({ name: "one" });
    expect(store.stateAt("!a", first.position).find((e) => e.type === "m.room.name")?.eventId).toBe("$n1");
    expect(store.stateChangedBetween("!a", first.position, second.position).map((e) => e.eventId)).toEqual([
      "$n2",
    ]);
  });

  it("cuts a timeline to the newest events and says it was limited", () => {
    const store = new RoomStore();
    roomWith(store, "!a", ALICE);
    for (let i = 0; i < 5; i++) message(store, "!a", ALICE, `m${i}`);

    const slice = store.timeline("!a", 0, store.position, 2);

    expect(slice.events.map((e) => e.content.body)).toEqual(["m3", "m4"]);
    expect(slice.limited).toBe(true);
    expect(store.timeline("!a", 4, store.position, 2).limited).toBe(false);
  });

  it("paginates backwards newest first and forwards oldest first", () => {
    const store = new RoomStore();
    roomWith(store, "!a", ALICE);
    for (let i = 0; i < 4; i++) message(store, "!a", ALICE, `m${i}`);

    const back = store.paginate("!a", 4, "b", 2);
    const forward = store.paginate("!a", 2, "f", 2);
    const rest = store.paginate("!a", 4, "f", 5);

    expect(back.events.map((e) => e.content.body)).toEqual(["m2", "m1"]);
    expect(back.exhausted).toBe(false);
    expect(forward.events.map((e) => e.content.body)).toEqual(["m1", "m2"]);
    expect(rest).toMatchObject({ exhausted: true });
    expect(rest.events.map((e) => e.content.body)).toEqual(["m3"]);
  });

  it("tracks memberships per user, including left rooms", () => {
    const store = new RoomStore();
    roomWith(store, "!a", ALICE);
    member(store, "!a", BOB, "invite", ALICE);
    const invitedAt = store.position;
    member(store, "!a", BOB, "join");
    member(store, "!a", BOB, "leave");

    expect(store.membership("!a", BOB)).toBe("leave");
    expect(store.roomsOf(BOB).get("!a")).toBe("leave");
    expect(store.membershipAt(BOB, "!a", invitedAt)).toBe("invite");
    expect(store.membershipChangesSince(BOB, invitedAt)).toEqual([
      { position: store.position, roomId: "!a", membership: "leave" },
    ]);
    expect(store.joinedMembers("!a")).toEqual([ALICE]);
  });

  it("lets a joined user see joined and invited members, and an invitee see no one", () => {
    const store = new RoomStore();
    roomWith(store, "!a", ALICE);
    member(store, "!a", BOB, "invite", ALICE);

    expect(store.sees(ALICE, BOB)).toBe(true);
    expect(store.sees(BOB, ALICE)).toBe(false);
    expect(store.sees(BOB, BOB)).toBe(true);

    member(store, "!a", BOB, "join");
    expect(store.sees(BOB, ALICE)).toBe(true);
  });

  it("keeps sharing while any common room remains", () => {
    const store = new RoomStore();
    roomWith(store, "!a", ALICE, BOB);
    roomWith(store, "!b", ALICE, BOB);
    member(store, "!a", BOB, "leave");

    expect(store.sees(ALICE, BOB)).toBe(true);
    member(store, "!b", BOB, "leave");
    expect(store.sees(ALICE, BOB)).toBe(false);
    expect(store.usersSeenBy(ALICE)).toEqual([]);
  });

  it("reports who started and stopped sharing since a position", () => {
    const store = new RoomStore();
    roomWith(store, "!a", ALICE, BOB);
    const since = store.position;
    member(store, "!a", CAROL, "join");
    member(store, "!a", BOB, "leave");

    expect(store.sharingChangesSince(ALICE, since)).toEqual({ started: [CAROL], stopped: [BOB] });
    expect(store.sharingChangesSince(ALICE, store.position)).toEqual({ started: [], stopped: [] });
  });

  it("counts a user who left and came back as started, and one who came and went as neither", () => {
    const store = new RoomStore();
    roomWith(store, "!a", ALICE, BOB);
    const since = store.position;
    member(store, "!a", BOB, "leave");
    member(store, "!a", BOB, "join");
    member(store, "!a", CAROL, "join");
    member(store, "!a", CAROL, "leave");

    expect(store.sharingChangesSince(ALICE, since)).toEqual({ started: [BOB], stopped: [] });
  });

  it("reads a sharing delta by visiting only the entries after the position", () => {
    const store = new RoomStore();
    store.createRoom("!big");
    member(store, "!big", ALICE, "join");
    for (let i = 0; i < 500; i++) member(store, "!big", `@u${i}:localhost`, "join");
    const since = store.position;
    member(store, "!big", CAROL, "join");
    const before = store.workDone;

    expect(store.sharingChangesSince(ALICE, since)).toEqual({ started: [CAROL], stopped: [] });
    expect(store.workDone - before).toBe(1);
  });

  it("remembers a transaction id per device and key", () => {
    const store = new RoomStore();
    store.recordTransaction(ALICE, "DEV", "!a\u0000m.room.message\u0000t1", "$x");

    expect(store.transaction(ALICE, "DEV", "!a\u0000m.room.message\u0000t1")).toBe("$x");
    expect(store.transaction(ALICE, "OTHER", "!a\u0000m.room.message\u0000t1")).toBeUndefined();
  });

  it("tells listeners about every new event", () => {
    const store = new RoomStore();
    const seen: number[] = [];
    const off = store.onChange((c) => seen.push(c.position));
    roomWith(store, "!a", ALICE);
    off();
    message(store, "!a", ALICE, "after");

    expect(seen).toEqual([1]);
  });

  it("counts unread messages from others after the user's own, up to a position, as the default push rules would", () => {
    const store = new RoomStore();
    roomWith(store, "!a", ALICE, BOB);
    message(store, "!a", BOB, "read: before alice spoke");
    message(store, "!a", ALICE, "mine");
    message(store, "!a", BOB, "one");
    store.append(
      "!a",
      {
        type: "m.room.message",
        sender: BOB,
        content: { msgtype: "m.notice", body: "bot" },
        originServerTs: 1,
      },
      `$e${nextId++}`,
    );
    const everyone = store.append(
      "!a",
      {
        type: "m.room.message",
        sender: BOB,
        content: { body: "@room", "m.mentions": { room: true } },
        originServerTs: 1,
      },
      `$e${nextId++}`,
    );
    message(store, "!a", BOB, "after the bound");

    expect(store.unreadCounts("!a", ALICE)).toEqual({ notification_count: 3, highlight_count: 1 });
    expect(store.unreadCounts("!a", ALICE, everyone.position)).toEqual({
      notification_count: 2,
      highlight_count: 1,
    });
    expect(store.unreadCounts("!a", ALICE, everyone.position - 1)).toEqual({
      notification_count: 1,
      highlight_count: 0,
    });
  });
});
