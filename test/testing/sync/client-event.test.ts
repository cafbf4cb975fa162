import { describe, expect, it } from "vitest";
import type { StoredEvent } from "../../../src/testing/state/room-store.js";
import { toClientEvent, toStrippedStateEvent } from "../../../src/testing/sync/client-event.js";

const sent: StoredEvent = {
  eventId: "$e",
  roomId: "!r:x",
  type: "m.room.topic",
  sender: "@a:x",
  content: { topic: "new" },
  stateKey: "",
  originServerTs: 1_000,
  position: 4,
  transaction: { deviceId: "PHONE", txnId: "t1" },
  prevContent: { topic: "old" },
};

describe("client events", () => {
  it("gives the transaction id only to the device that sent the event", () => {
    const own = toClientEvent(
      sent,
      { userId: "@a:x", deviceId: "PHONE" },
      { includeRoomId: false, now: 1_500 },
    );
    const otherDevice = toClientEvent(
      sent,
      { userId: "@a:x", deviceId: "LAPTOP" },
      { includeRoomId: false, now: 1_500 },
    );

    expect(own).toEqual({
      type: "m.room.topic",
      content: { topic: "new" },
      sender: "@a:x",
      event_id: "$e",
      origin_server_ts: 1_000,
      state_key: "",
      unsigned: { age: 500, transaction_id: "t1", prev_content: { topic: "old" } },
    });
    expect(otherDevice.unsigned).toEqual({ age: 500, prev_content: { topic: "old" } });
  });

  it("adds room_id outside /sync and strips state for invites", () => {
    expect(
      toClientEvent(sent, { userId: "@b:x", deviceId: "D" }, { includeRoomId: true, now: 0 }).room_id,
    ).toBe("!r:x");
    expect(toStrippedStateEvent(sent)).toEqual({
      type: "m.room.topic",
      state_key: "",
      content: { topic: "new" },
      sender: "@a:x",
    });
  });
});
