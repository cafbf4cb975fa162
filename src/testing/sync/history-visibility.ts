import type { Membership, RoomStore, StoredEvent } from "../state/room-store.js";

/**
 * Whether a user may see a room event, by the room's `m.room.history_visibility` when the event was
 * sent and the user's membership then (Client-Server spec, "Room History Visibility"):
 * - `world_readable`: everyone;
 * - `shared` (the default): every event while the user is joined now, and events sent while
 *   they were joined;
 * - `invited`: events from when they were invited or joined;
 * - `joined`: only events from when they were joined.
 *
 * For the user's own membership events the more privileged of the old and new membership counts,
 * so a user sees their own leave and join (as Synapse's `_check_client_allowed_to_see_event`).
 */
export function canSeeEvent(rooms: RoomStore, userId: string, event: StoredEvent): boolean {
  const membership = membershipForEvent(rooms, userId, event);
  if (membership === "join") return true;
  const visibility = historyVisibilityBefore(rooms, event);
  if (visibility === "world_readable") return true;
  if (visibility === "shared") return rooms.membership(event.roomId, userId) === "join";
  if (visibility === "invited") return membership === "invite";
  return false;
}

const PRIORITY: readonly (Membership | undefined)[] = ["join", "invite", "knock", "leave", "ban", undefined];

function membershipForEvent(rooms: RoomStore, userId: string, event: StoredEvent): Membership | undefined {
  if (event.type === "m.room.member" && event.stateKey === userId) {
    const now = rooms.membershipAt(userId, event.roomId, event.position);
    const before = rooms.membershipAt(userId, event.roomId, event.position - 1);
    // Your own leave after a join or invite is always visible: it is how a room disappears.
    if (now === "leave" && (before === "join" || before === "invite")) return "join";
    return PRIORITY.indexOf(before) < PRIORITY.indexOf(now) ? before : now;
  }
  return rooms.membershipAt(userId, event.roomId, event.position);
}

function historyVisibilityBefore(rooms: RoomStore, event: StoredEvent): string {
  const hv = rooms.stateEventAt(event.roomId, "m.room.history_visibility", "", event.position - 1);
  const value = hv?.content.history_visibility;
  return typeof value === "string" ? value : "shared";
}
