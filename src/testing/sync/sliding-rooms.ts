import type { AccountDataStore } from "../state/account-data-store.js";
import type { Membership, RoomStore, StoredEvent } from "../state/room-store.js";
import { toClientEvent, toStrippedStateEvent } from "./client-event.js";
import { canSeeEvent } from "./history-visibility.js";
import type { SentRoom } from "./sliding-connection-state.js";
import { selectRequiredState, type Viewer } from "./sliding-events.js";
import type { RequiredState, RoomParameters, SlidingListRequest } from "./sliding-request.js";

/**
 * Room lists, room subscriptions and the `rooms` section of simplified sliding sync (MSC4186), at
 * the level a client's room list and an encrypted conversation need; Synapse's
 * `SlidingSyncRoomLists` and `get_room_sync_data` are the model.
 *
 * - A list holds the rooms the user is joined or invited to — plus, on a request with `pos`, rooms
 *   left since then — newest activity first (the `bump_stamp`: stream position of the latest
 *   message-like event). `ranges` pick windows out of it (`ops: [{op: "SYNC", range, room_ids}]`);
 *   a list without `ranges` only reports its `count`. Filters: `is_invite`, `is_encrypted`, `is_dm`.
 * - `room_subscriptions` add rooms the user has a membership in, whatever the lists hold.
 * - A room appears in `rooms` the first time the connection sends it (`initial: true`, its
 *   `required_state` and the last `timeline_limit` events) and afterwards only when something
 *   happened in it since the `pos`: the new events (`num_live`), changed state, name and counts.
 *   Invites carry `invite_state` (stripped state) instead of a timeline.
 * - `notification_count` and `highlight_count` are classic sync's (`RoomStore.unreadCounts`): the
 *   mock has no read receipts, so messages from others after the user's own latest event count.
 */

/** Synapse `SLIDING_SYNC_DEFAULT_BUMP_EVENT_TYPES`. */
const BUMP_TYPES: ReadonlySet<string> = new Set([
  "m.room.create",
  "m.room.message",
  "m.room.encrypted",
  "m.sticker",
  "m.call.invite",
  "m.poll.start",
  "m.beacon_info",
]);

/** Synapse's default `room_prejoin_state` types, sent with an invite. */
const PREJOIN_STATE_TYPES: ReadonlySet<string> = new Set([
  "m.room.create",
  "m.room.join_rules",
  "m.room.canonical_alias",
  "m.room.avatar",
  "m.room.encryption",
  "m.room.name",
  "m.room.topic",
]);

/** Events that count toward `notification_count` under the default push rules. */

export interface SlidingRoomsInput {
  rooms: RoomStore;
  accountData: AccountDataStore;
  viewer: Viewer;
  now: number;
  lists: ReadonlyMap<string, SlidingListRequest>;
  roomSubscriptions: ReadonlyMap<string, RoomParameters>;
  /** The room-stream position of the request's `pos`; `undefined` for a request without `pos`. */
  since: number | undefined;
  /** What the connection has sent so far. */
  sent: ReadonlyMap<string, SentRoom>;
  /** The room-stream position this response covers. */
  upTo: number;
  /** `prev_batch` for a timeline that starts after `position` (a `/messages` `from` token). */
  prevBatch(position: number): string;
}

export interface ListWire {
  count: number;
  ops: { op: "SYNC"; range: [number, number]; room_ids: string[] }[];
}

export interface SlidingRoomsResult {
  lists: Record<string, ListWire>;
  rooms: Record<string, Record<string, unknown>>;
  /** What the connection has sent once the client has this response. */
  sent: Map<string, SentRoom>;
  /** Whether any room has news (a long-poll returns at once). */
  hasNews: boolean;
}

interface Candidate {
  roomId: string;
  membership: Membership;
  /** The last position the user may see: their leave or invite event, or `upTo` while joined. */
  visibleUpTo: number;
  bumpStamp: number;
}

export function slidingRooms(input: SlidingRoomsInput): SlidingRoomsResult {
  const candidates = listCandidates(input);
  const configs = new Map<string, RoomParameters>();
  const addConfig = (roomId: string, config: RoomParameters) => {
    const existing = configs.get(roomId);
    configs.set(roomId, existing ? combine(existing, config) : config);
  };

  const lists: Record<string, ListWire> = {};
  for (const [name, list] of input.lists) {
    const matching = candidates.filter((c) => matchesFilters(input, c, list.filters));
    const ops: ListWire["ops"] = [];
    for (const range of list.ranges ?? []) {
      const ids = matching.slice(range[0], range[1] + 1).map((c) => c.roomId);
      for (const id of ids) addConfig(id, list);
      ops.push({ op: "SYNC", range, room_ids: ids });
    }
    lists[name] = { count: matching.length, ops };
  }

  const byId = new Map(candidates.map((c) => [c.roomId, c]));
  for (const [roomId, config] of input.roomSubscriptions) {
    const candidate = byId.get(roomId) ?? subscribedCandidate(input, roomId);
    if (!candidate) continue;
    byId.set(roomId, candidate);
    addConfig(roomId, config);
  }

  const sent = new Map(input.sent);
  const roomsWire: Record<string, Record<string, unknown>> = {};
  for (const [roomId, config] of configs) {
    const candidate = byId.get(roomId)!;
    const entry = roomEntry(input, candidate, config);
    if (!entry) continue;
    roomsWire[roomId] = entry.wire;
    sent.set(roomId, entry.sent);
  }
  return { lists, rooms: roomsWire, sent, hasNews: Object.keys(roomsWire).length > 0 };
}

/** The rooms a list may show, newest activity first (ties: larger room id first, for stability). */
function listCandidates(input: SlidingRoomsInput): Candidate[] {
  const result: Candidate[] = [];
  for (const [roomId, membership] of input.rooms.roomsOf(input.viewer.userId)) {
    const candidate = candidateFor(input, roomId, membership);
    if (!candidate) continue;
    if (membership === "leave" || membership === "ban") {
      // Only rooms left since the `pos` are listed, so the client learns of the leave once.
      if (input.since === undefined || candidate.visibleUpTo <= input.since) continue;
    }
    result.push(candidate);
  }
  return result.sort((a, b) => b.bumpStamp - a.bumpStamp || (a.roomId < b.roomId ? 1 : -1));
}

function subscribedCandidate(input: SlidingRoomsInput, roomId: string): Candidate | undefined {
  const membership = input.rooms.membership(roomId, input.viewer.userId);
  return membership === undefined ? undefined : candidateFor(input, roomId, membership);
}

function candidateFor(
  input: SlidingRoomsInput,
  roomId: string,
  membership: Membership,
): Candidate | undefined {
  if (membership === "knock") return undefined;
  const own = input.rooms.stateEvent(roomId, "m.room.member", input.viewer.userId);
  const visibleUpTo = membership === "join" ? input.upTo : Math.min(own?.position ?? input.upTo, input.upTo);
  const bumpStamp =
    membership === "invite"
      ? visibleUpTo
      : (latestBumpEvent(input.rooms, roomId, visibleUpTo) ?? visibleUpTo);
  return { roomId, membership, visibleUpTo, bumpStamp };
}

function latestBumpEvent(rooms: RoomStore, roomId: string, upTo: number): number | undefined {
  let found: number | undefined;
  walkBack(rooms, roomId, upTo, (event) => {
    if (!BUMP_TYPES.has(event.type)) return true;
    found = event.position;
    return false;
  });
  return found;
}

/** Visits the room's events at or before `upTo`, newest first, while `visit` returns true. */
function walkBack(
  rooms: RoomStore,
  roomId: string,
  upTo: number,
  visit: (event: StoredEvent) => boolean,
): void {
  let cursor = upTo;
  for (;;) {
    const page = rooms.paginate(roomId, cursor, "b", 50);
    for (const event of page.events) if (!visit(event)) return;
    const last = page.events.at(-1);
    if (!last || page.exhausted) return;
    cursor = last.position - 1;
  }
}

function matchesFilters(
  input: SlidingRoomsInput,
  c: Candidate,
  filters: SlidingListRequest["filters"],
): boolean {
  if (filters.isInvite !== undefined && (c.membership === "invite") !== filters.isInvite) return false;
  if (filters.isEncrypted !== undefined) {
    const encrypted = input.rooms.stateEvent(c.roomId, "m.room.encryption", "") !== undefined;
    if (encrypted !== filters.isEncrypted) return false;
  }
  if (filters.isDm !== undefined && isDm(input, c) !== filters.isDm) return false;
  return true;
}

/** A DM is a room listed in the user's `m.direct` account data, or an invite marked `is_direct`. */
function isDm(input: SlidingRoomsInput, c: Candidate): boolean {
  const direct = input.accountData.get(input.viewer.userId, "m.direct");
  if (direct && Object.values(direct).some((ids) => Array.isArray(ids) && ids.includes(c.roomId)))
    return true;
  if (c.membership !== "invite") return false;
  const invite = input.rooms.stateEvent(c.roomId, "m.room.member", input.viewer.userId);
  return invite?.content.is_direct === true;
}

/** Synapse `combine_room_sync_config`: the larger timeline, the union of required state. */
function combine(a: RoomParameters, b: RoomParameters): RoomParameters {
  const seen = new Set(a.requiredState.map(([t, k]) => `${t}\u0000${k}`));
  const requiredState: RequiredState = [...a.requiredState];
  for (const pair of b.requiredState) {
    if (!seen.has(`${pair[0]}\u0000${pair[1]}`)) requiredState.push(pair);
  }
  return { requiredState, timelineLimit: Math.max(a.timelineLimit, b.timelineLimit) };
}

function roomEntry(
  input: SlidingRoomsInput,
  c: Candidate,
  config: RoomParameters,
): { wire: Record<string, unknown>; sent: SentRoom } | undefined {
  const { rooms, viewer, now } = input;
  const previously = input.sent.get(c.roomId);

  if (c.membership === "invite") {
    if (previously?.asInvite && previously.position >= c.visibleUpTo) return undefined;
    const inviteState = rooms
      .stateAt(c.roomId, c.visibleUpTo)
      .filter(
        (e) =>
          PREJOIN_STATE_TYPES.has(e.type) || (e.type === "m.room.member" && e.stateKey === viewer.userId),
      )
      .map(toStrippedStateEvent);
    const wire: Record<string, unknown> = {
      notification_count: 0,
      highlight_count: 0,
      bump_stamp: c.bumpStamp,
      initial: true,
      invite_state: inviteState,
    };
    const name = roomName(rooms, c.roomId, c.visibleUpTo);
    if (name !== undefined) wire.name = name;
    if (isDm(input, c)) wire.is_dm = true;
    return { wire, sent: { position: c.visibleUpTo, asInvite: true } };
  }

  const upTo = c.visibleUpTo;
  const initial = previously === undefined || previously.asInvite;
  const after = initial ? 0 : previously.position;
  if (!initial && upTo <= after) return undefined;

  const visible = (e: StoredEvent) => canSeeEvent(rooms, viewer.userId, e);
  const slice = rooms.timeline(c.roomId, after, upTo, config.timelineLimit, visible);
  const state = initial ? rooms.stateAt(c.roomId, upTo) : rooms.stateChangedBetween(c.roomId, after, upTo);
  const requiredState = selectRequiredState(state, config.requiredState, viewer, slice.events);
  const nameChanged = initial || state.some((e) => e.type === "m.room.name");
  const membersChanged = initial || state.some((e) => e.type === "m.room.member");
  if (
    !initial &&
    slice.events.length === 0 &&
    requiredState.length === 0 &&
    !nameChanged &&
    !membersChanged
  ) {
    return undefined;
  }

  const wire: Record<string, unknown> = {
    ...rooms.unreadCounts(c.roomId, viewer.userId, upTo),
    bump_stamp: c.bumpStamp,
  };
  if (membersChanged) {
    const members = [...rooms.members(c.roomId).values()];
    wire.joined_count = members.filter((m) => m === "join").length;
    wire.invited_count = members.filter((m) => m === "invite").length;
  }
  const name = nameChanged ? roomName(rooms, c.roomId, upTo) : undefined;
  if (name !== undefined) wire.name = name;
  if (initial) wire.initial = true;
  const format = { includeRoomId: false, now };
  if (requiredState.length > 0)
    wire.required_state = requiredState.map((e) => toClientEvent(e, viewer, format));
  if (slice.events.length > 0) wire.timeline = slice.events.map((e) => toClientEvent(e, viewer, format));
  wire.limited = slice.limited;
  const first = slice.events[0];
  wire.prev_batch = input.prevBatch(first ? first.position - 1 : upTo);
  // Events after the `pos` are "live"; an initial response has none (Synapse).
  wire.num_live = initial ? 0 : slice.events.length;
  if (isDm(input, c)) wire.is_dm = true;
  return { wire, sent: { position: upTo, asInvite: false } };
}

function roomName(rooms: RoomStore, roomId: string, upTo: number): string | undefined {
  const event = rooms.stateAt(roomId, upTo).find((e) => e.type === "m.room.name" && e.stateKey === "");
  const name = event?.content.name;
  return typeof name === "string" && name !== "" ? name : undefined;
}
