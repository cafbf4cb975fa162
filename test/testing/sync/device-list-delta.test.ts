import { describe, expect, it } from "vitest";
import { KeyStore } from "../../../src/testing/state/key-store.js";
import { RoomStore } from "../../../src/testing/state/room-store.js";
import {
  currentDeviceListPosition,
  deviceListDelta,
  isEmptyDeviceListDelta,
} from "../../../src/testing/sync/device-list-delta.js";

const ALICE = "@alice:localhost";
const BOB = "@bob:localhost";
const CAROL = "@carol:localhost";
const DAVE = "@dave:localhost";

let n = 0;
function setMembership(rooms: RoomStore, roomId: string, userId: string, membership: string) {
  if (!rooms.hasRoom(roomId)) rooms.createRoom(roomId);
  rooms.append(
    roomId,
    { type: "m.room.member", stateKey: userId, sender: userId, content: { membership }, originServerTs: 0 },
    `$${n++}`,
  );
}

function stores() {
  return { keys: new KeyStore(), rooms: new RoomStore() };
}

describe("deviceListDelta", () => {
  it("reports key changes of users sharing a room, and of the viewer, but not of strangers", () => {
    const s = stores();
    setMembership(s.rooms, "!a", ALICE, "join");
    setMembership(s.rooms, "!a", BOB, "join");
    const since = currentDeviceListPosition(s);
    s.keys.noteDeviceListChange(BOB);
    s.keys.noteDeviceListChange(ALICE);
    s.keys.noteDeviceListChange(DAVE);

    expect(deviceListDelta(s, ALICE, since)).toEqual({ changed: [ALICE, BOB], left: [] });
  });

  it("counts a user who starts sharing a room as changed even without a key change", () => {
    const s = stores();
    setMembership(s.rooms, "!a", ALICE, "join");
    const since = currentDeviceListPosition(s);
    setMembership(s.rooms, "!a", CAROL, "invite");

    expect(deviceListDelta(s, ALICE, since)).toEqual({ changed: [CAROL], left: [] });
  });

  it("gives a user who joins everyone already in the room as changed", () => {
    const s = stores();
    setMembership(s.rooms, "!a", ALICE, "join");
    setMembership(s.rooms, "!a", BOB, "join");
    const since = currentDeviceListPosition(s);
    setMembership(s.rooms, "!a", CAROL, "join");

    expect(deviceListDelta(s, CAROL, since)).toEqual({ changed: [ALICE, BOB], left: [] });
  });

  it("lists users who share no room any more as left, not changed", () => {
    const s = stores();
    setMembership(s.rooms, "!a", ALICE, "join");
    setMembership(s.rooms, "!a", BOB, "join");
    const since = currentDeviceListPosition(s);
    s.keys.noteDeviceListChange(BOB);
    setMembership(s.rooms, "!a", BOB, "leave");

    expect(deviceListDelta(s, ALICE, since)).toEqual({ changed: [], left: [BOB] });
  });

  it("tells the one who leaves that the others are left", () => {
    const s = stores();
    setMembership(s.rooms, "!a", ALICE, "join");
    setMembership(s.rooms, "!a", BOB, "join");
    const since = currentDeviceListPosition(s);
    setMembership(s.rooms, "!a", BOB, "leave");

    expect(deviceListDelta(s, BOB, since)).toEqual({ changed: [], left: [ALICE] });
  });

  it("is empty when nothing changed after the position", () => {
    const s = stores();
    setMembership(s.rooms, "!a", ALICE, "join");
    setMembership(s.rooms, "!a", BOB, "join");
    s.keys.noteDeviceListChange(BOB);
    const delta = deviceListDelta(s, ALICE, currentDeviceListPosition(s));

    expect(delta).toEqual({ changed: [], left: [] });
    expect(isEmptyDeviceListDelta(delta)).toBe(true);
  });

  it("hides a user-signing change of another user from the viewer", () => {
    const s = stores();
    setMembership(s.rooms, "!a", ALICE, "join");
    setMembership(s.rooms, "!a", BOB, "join");
    const since = currentDeviceListPosition(s);
    s.keys.noteSignatureBy(BOB, CAROL);

    expect(deviceListDelta(s, ALICE, since)).toEqual({ changed: [], left: [] });
  });
});
