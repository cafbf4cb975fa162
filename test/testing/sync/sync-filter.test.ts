import { describe, expect, it } from "vitest";
import type { StoredEvent } from "../../../src/testing/state/room-store.js";
import { filterSchema, toSyncFilter } from "../../../src/testing/sync/sync-filter.js";

const event = (type: string, sender = "@a:x", roomId = "!r"): StoredEvent => ({
  eventId: "$e",
  roomId,
  type,
  sender,
  content: {},
  originServerTs: 0,
  position: 1,
});

describe("sync filters", () => {
  it("defaults to Synapse's timeline limit of 10, takes a smaller one and caps larger limits at 100", () => {
    expect(toSyncFilter({}).timelineLimit).toBe(10);
    expect(toSyncFilter({ room: { timeline: {} } }).timelineLimit).toBe(10);
    expect(toSyncFilter({ room: { timeline: { limit: 3 } } }).timelineLimit).toBe(3);
    expect(toSyncFilter({ room: { timeline: { limit: 5000 } } }).timelineLimit).toBe(100);
  });

  it("matches event types with a trailing wildcard and honours not_types and senders", () => {
    const f = toSyncFilter({
      room: { timeline: { types: ["m.room.*"], not_types: ["m.room.member"], not_senders: ["@b:x"] } },
    });

    expect(f.wantsTimelineEvent(event("m.room.message"))).toBe(true);
    expect(f.wantsTimelineEvent(event("m.room.member"))).toBe(false);
    expect(f.wantsTimelineEvent(event("m.reaction"))).toBe(false);
    expect(f.wantsTimelineEvent(event("m.room.message", "@b:x"))).toBe(false);
  });

  it("selects rooms with rooms and not_rooms", () => {
    const f = toSyncFilter({ room: { rooms: ["!a", "!b"], not_rooms: ["!b"] } });

    expect(["!a", "!b", "!c"].map((r) => f.wantsRoom(r))).toEqual([true, false, false]);
  });

  it("refuses a filter of the wrong shape", () => {
    expect(filterSchema.safeParse({ room: { timeline: { limit: "ten" } } }).success).toBe(false);
    expect(filterSchema.safeParse({ event_format: "xml" }).success).toBe(false);
    expect(
      filterSchema.safeParse({ room: { timeline: { unread_thread_notifications: true } }, extra: 1 }).success,
    ).toBe(true);
  });
});
