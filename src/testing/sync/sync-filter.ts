import { z } from "zod";
import type { StoredEvent } from "../state/room-store.js";

/**
 * Sync filters (Client-Server spec, "Filtering"): the JSON shape a client uploads or inlines, and
 * the parts the mock applies — the timeline limit, `include_leave`, room and event-type/sender
 * selection, and `lazy_load_members` only as far as it turns on the room `summary` (as Synapse).
 * Other fields (presence, ephemeral, `event_fields`) are accepted and ignored; the mock always sends
 * every member, which a lazy-loading client must accept anyway.
 */

const eventFilterSchema = z.looseObject({
  limit: z.number().int().optional(),
  types: z.array(z.string()).optional(),
  not_types: z.array(z.string()).optional(),
  senders: z.array(z.string()).optional(),
  not_senders: z.array(z.string()).optional(),
});

const roomEventFilterSchema = eventFilterSchema.extend({
  rooms: z.array(z.string()).optional(),
  not_rooms: z.array(z.string()).optional(),
  lazy_load_members: z.boolean().optional(),
  include_redundant_members: z.boolean().optional(),
  contains_url: z.boolean().optional(),
  unread_thread_notifications: z.boolean().optional(),
});

/** The filter schema Synapse checks inline filters against (`synapse/api/filtering.py`). */
export const filterSchema = z.looseObject({
  event_fields: z.array(z.string()).optional(),
  event_format: z.enum(["client", "federation"]).optional(),
  presence: eventFilterSchema.optional(),
  account_data: eventFilterSchema.optional(),
  room: z
    .looseObject({
      rooms: z.array(z.string()).optional(),
      not_rooms: z.array(z.string()).optional(),
      include_leave: z.boolean().optional(),
      state: roomEventFilterSchema.optional(),
      timeline: roomEventFilterSchema.optional(),
      ephemeral: roomEventFilterSchema.optional(),
      account_data: roomEventFilterSchema.optional(),
    })
    .optional(),
});

export type FilterJson = z.infer<typeof filterSchema>;

/** Synapse's default timeline limit, and its `filter_timeline_limit` cap (default 100). */
export const DEFAULT_TIMELINE_LIMIT = 10;
export const MAX_TIMELINE_LIMIT = 100;

export interface SyncFilter {
  timelineLimit: number;
  includeLeave: boolean;
  lazyLoadMembers: boolean;
  /** Whether a room is wanted at all. */
  wantsRoom(roomId: string): boolean;
  /** Whether a timeline event passes the timeline filter. */
  wantsTimelineEvent(event: StoredEvent): boolean;
}

export function toSyncFilter(json: FilterJson): SyncFilter {
  const room = json.room ?? {};
  const timeline = room.timeline ?? {};
  const limit = timeline.limit ?? DEFAULT_TIMELINE_LIMIT;
  return {
    timelineLimit: Math.min(Math.max(limit, 0), MAX_TIMELINE_LIMIT),
    includeLeave: room.include_leave === true,
    lazyLoadMembers: room.state?.lazy_load_members === true,
    wantsRoom: (roomId) =>
      (room.rooms === undefined || room.rooms.includes(roomId)) && !(room.not_rooms ?? []).includes(roomId),
    wantsTimelineEvent: (event) =>
      (timeline.rooms === undefined || timeline.rooms.includes(event.roomId)) &&
      !(timeline.not_rooms ?? []).includes(event.roomId) &&
      (timeline.types === undefined || timeline.types.some((t) => typeMatches(t, event.type))) &&
      !(timeline.not_types ?? []).some((t) => typeMatches(t, event.type)) &&
      (timeline.senders === undefined || timeline.senders.includes(event.sender)) &&
      !(timeline.not_senders ?? []).includes(event.sender),
  };
}

export const defaultSyncFilter: SyncFilter = toSyncFilter({});

/** Filter type patterns may end in `*` (spec: "A '*' can be used as a wildcard"). */
function typeMatches(pattern: string, type: string): boolean {
  return pattern.endsWith("*") ? type.startsWith(pattern.slice(0, -1)) : pattern === type;
}
