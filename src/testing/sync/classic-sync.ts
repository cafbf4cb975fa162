import type { Profile } from "../profiles.js";
import { oneTimeKeyCounts } from "../routes/keys.js";
import { defaultPushRules } from "../routes/push-rules.js";
import type { StoredEvent } from "../state/room-store.js";
import type { ServerState } from "../state/server-state.js";
import { type EventViewer, toClientEvent, toStrippedStateEvent } from "./client-event.js";
import { deviceListDelta } from "./device-list-delta.js";
import { canSeeEvent } from "./history-visibility.js";
import type { SyncFilter } from "./sync-filter.js";
import { formatPaginationToken, formatSyncToken, type SyncPosition } from "./sync-token.js";

/**
 * One classic `/sync` response (Client-Server spec, `GET /sync`), built from the stores at one
 * instant — no I/O, no waiting, nothing changed (the route acknowledges to-device messages and
 * long-polls around it).
 *
 * Shape and presence follow Synapse's `SyncRestServlet.encode_response`: empty top-level sections
 * are left out, `device_one_time_keys_count` and `device_unused_fallback_key_types` are always
 * present, a joined room always has `timeline`, `state`, `account_data`, `ephemeral`,
 * `unread_notifications` and `summary`. The mock never sends `org.matrix.msc4222.state_after`
 * (Synapse only does with an experimental flag on), whatever `use_state_after` says.
 */

/** Synapse's limit on to-device messages per response. */
export const TO_DEVICE_LIMIT = 100;

export interface ClassicSyncRequest {
  userId: string;
  deviceId: string;
  /** `undefined` for an initial sync. */
  since: SyncPosition | undefined;
  fullState: boolean;
  filter: SyncFilter;
}

export interface ClassicSyncResult {
  body: Record<string, unknown>;
  next: SyncPosition;
  /** Nothing a long-poll should return early for: no rooms, account data, to-device, device lists. */
  isEmpty: boolean;
}

interface Context {
  state: ServerState;
  req: ClassicSyncRequest;
  viewer: EventViewer;
  now: number;
  upTo: number;
}

export function buildClassicSync(
  state: ServerState,
  profile: Profile,
  req: ClassicSyncRequest,
): ClassicSyncResult {
  const ctx: Context = {
    state,
    req,
    viewer: { userId: req.userId, deviceId: req.deviceId },
    now: state.clock.now(),
    upTo: state.rooms.position,
  };
  const since = req.since;
  const body: Record<string, unknown> = {};

  const rooms = roomSections(ctx);
  const accountData = since
    ? state.accountData.changedSince(req.userId, since.accountData)
    : [
        ...[...state.accountData.all(req.userId)].map(([type, content]) => ({
          type,
          content: structuredClone(content),
        })),
        // Synapse puts the push rules into the initial sync's account data.
        { type: "m.push_rules", content: defaultPushRules(req.userId) },
      ];
  const toDevice = state.toDevice.page(req.userId, req.deviceId, since?.toDevice ?? 0, TO_DEVICE_LIMIT);
  const deviceLists = since
    ? deviceListDelta(state, req.userId, { keys: since.keys, rooms: since.rooms })
    : { changed: [], left: [] };

  const next: SyncPosition = {
    rooms: ctx.upTo,
    // Past the last message handed out; with nothing more waiting, the whole stream so far.
    toDevice: toDevice.hasMore ? toDevice.nextAfter : Math.max(state.toDevice.position, since?.toDevice ?? 0),
    keys: state.keys.position,
    accountData: state.accountData.position,
  };
  body.next_batch = formatSyncToken(next);
  if (accountData.length > 0) body.account_data = { events: accountData };
  if (toDevice.events.length > 0) body.to_device = { events: toDevice.events.map((e) => e.event) };
  if (deviceLists.changed.length > 0 || deviceLists.left.length > 0) {
    const lists: Record<string, string[]> = {};
    if (deviceLists.changed.length > 0) lists.changed = deviceLists.changed;
    if (deviceLists.left.length > 0) lists.left = deviceLists.left;
    body.device_lists = lists;
  }
  body.device_one_time_keys_count = oneTimeKeyCounts({ state, profile }, req.userId, req.deviceId);
  body.device_unused_fallback_key_types = state.keys.unusedFallbackKeyTypes(req.userId, req.deviceId);
  const roomCount =
    Object.keys(rooms.join).length + Object.keys(rooms.invite).length + Object.keys(rooms.leave).length;
  if (roomCount > 0) {
    const section: Record<string, unknown> = {};
    if (Object.keys(rooms.join).length > 0) section.join = rooms.join;
    if (Object.keys(rooms.invite).length > 0) section.invite = rooms.invite;
    if (Object.keys(rooms.leave).length > 0) section.leave = rooms.leave;
    body.rooms = section;
  }
  const isEmpty =
    roomCount === 0 &&
    accountData.length === 0 &&
    toDevice.events.length === 0 &&
    deviceLists.changed.length === 0 &&
    deviceLists.left.length === 0;
  return { body, next, isEmpty };
}

type Sections = Record<"join" | "invite" | "leave", Record<string, unknown>>;

function roomSections(ctx: Context): Sections {
  const { state, req } = ctx;
  const sections: Sections = { join: {}, invite: {}, leave: {} };
  const since = req.since?.rooms;
  const changedRooms = new Set(
    since === undefined ? [] : state.rooms.membershipChangesSince(req.userId, since).map((c) => c.roomId),
  );
  for (const [roomId, membership] of state.rooms.roomsOf(req.userId)) {
    if (!req.filter.wantsRoom(roomId)) continue;
    const changed = since === undefined || changedRooms.has(roomId);
    if (membership === "join") {
      const entry = joinedRoom(ctx, roomId, since, changed);
      if (entry) sections.join[roomId] = entry;
    } else if (membership === "invite") {
      if (changed || req.fullState)
        sections.invite[roomId] = { invite_state: { events: inviteState(ctx, roomId) } };
    } else if (membership === "leave" || membership === "ban") {
      const wanted = since === undefined ? req.filter.includeLeave : changed;
      if (wanted) sections.leave[roomId] = leftRoom(ctx, roomId, since);
    }
  }
  return sections;
}

/** Timeline and state of a room between `since` and `upTo`, as the viewer may see them. */
function roomUpdate(
  ctx: Context,
  roomId: string,
  since: number | undefined,
  upTo: number,
  fullState: boolean,
): {
  timeline: Record<string, unknown>;
  state: Record<string, unknown>;
  events: StoredEvent[];
  stateEvents: StoredEvent[];
} {
  const { state, req, viewer } = ctx;
  const visible = (e: StoredEvent) =>
    req.filter.wantsTimelineEvent(e) && canSeeEvent(state.rooms, req.userId, e);
  const slice = state.rooms.timeline(roomId, since ?? 0, upTo, req.filter.timelineLimit, visible);
  const first = slice.events[0];
  const timelineStart = first ? first.position - 1 : upTo;
  let stateEvents: StoredEvent[];
  if (fullState) stateEvents = state.rooms.stateAt(roomId, timelineStart);
  else if (since !== undefined && slice.limited)
    stateEvents = state.rooms.stateChangedBetween(roomId, since, timelineStart);
  else stateEvents = [];
  const options = { includeRoomId: false, now: ctx.now };
  return {
    timeline: {
      events: slice.events.map((e) => toClientEvent(e, viewer, options)),
      prev_batch: formatPaginationToken(timelineStart),
      limited: slice.limited,
    },
    state: { events: stateEvents.map((e) => toClientEvent(e, viewer, options)) },
    events: slice.events,
    stateEvents,
  };
}

function joinedRoom(ctx: Context, roomId: string, since: number | undefined, membershipChanged: boolean) {
  const { state, req } = ctx;
  // A room the client did not know as joined gets its full state (spec: "newly joined room").
  const newlyJoined =
    since === undefined ||
    (membershipChanged && state.rooms.membershipAt(req.userId, roomId, since) !== "join");
  const update = roomUpdate(
    ctx,
    roomId,
    newlyJoined ? undefined : since,
    ctx.upTo,
    newlyJoined || req.fullState,
  );
  if (!newlyJoined && !req.fullState && update.events.length === 0 && update.stateEvents.length === 0)
    return undefined;
  return {
    timeline: update.timeline,
    state: update.state,
    account_data: { events: [] },
    ephemeral: { events: [] },
    unread_notifications: state.rooms.unreadCounts(roomId, req.userId),
    summary: req.filter.lazyLoadMembers ? summary(ctx, roomId) : {},
  };
}

function leftRoom(ctx: Context, roomId: string, since: number | undefined) {
  const { state, req } = ctx;
  const own = state.rooms.stateEvent(roomId, "m.room.member", req.userId);
  const leftAt = own?.position ?? ctx.upTo;
  const knewRoom = since !== undefined && state.rooms.membershipAt(req.userId, roomId, since) === "join";
  // Someone who never joined (a rejected invite) learns no state beyond the invite they had.
  const wasMember = state.rooms.membershipAt(req.userId, roomId, leftAt - 1) === "join";
  const fullState = wasMember && (!knewRoom || req.fullState);
  const update = roomUpdate(ctx, roomId, knewRoom ? since : undefined, leftAt, fullState);
  return { timeline: update.timeline, state: update.state, account_data: { events: [] } };
}

/** Stripped state for an invite (spec, "Stripped state"), with the invite itself last (Synapse). */
function inviteState(ctx: Context, roomId: string): Record<string, unknown>[] {
  const { rooms } = ctx.state;
  const invite = rooms.stateEvent(roomId, "m.room.member", ctx.req.userId);
  const at = invite?.position ?? rooms.position;
  const events: Record<string, unknown>[] = [];
  for (const type of [
    "m.room.create",
    "m.room.join_rules",
    "m.room.canonical_alias",
    "m.room.avatar",
    "m.room.name",
    "m.room.encryption",
    "m.room.topic",
  ]) {
    const e = rooms.stateEventAt(roomId, type, "", at);
    if (e) events.push(toStrippedStateEvent(e));
  }
  if (invite) {
    const inviter = rooms.stateEventAt(roomId, "m.room.member", invite.sender, at);
    if (inviter && invite.sender !== ctx.req.userId) events.push(toStrippedStateEvent(inviter));
    events.push({
      ...toClientEvent(invite, ctx.viewer, { includeRoomId: false, now: ctx.now }),
    });
  }
  return events;
}

function summary(ctx: Context, roomId: string): Record<string, unknown> {
  const { rooms } = ctx.state;
  const members = rooms.members(roomId);
  let joined = 0;
  let invited = 0;
  const heroes: string[] = [];
  for (const [userId, m] of members) {
    if (m === "join") joined++;
    if (m === "invite") invited++;
    if ((m === "join" || m === "invite") && userId !== ctx.req.userId && heroes.length < 5)
      heroes.push(userId);
  }
  const named =
    rooms.stateEvent(roomId, "m.room.name", "") || rooms.stateEvent(roomId, "m.room.canonical_alias", "");
  return {
    ...(named ? {} : { "m.heroes": heroes }),
    "m.joined_member_count": joined,
    "m.invited_member_count": invited,
  };
}
