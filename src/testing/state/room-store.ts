import { type Clock, systemClock } from "../../time/clock.js";
import { cloneJson } from "./canonical-json.js";
import { ROOM_EVENT_TRANSACTION_TTL_MS, TransactionCache } from "./transaction-cache.js";

/**
 * The mock homeserver's rooms: an append-only event stream per room, the current state derived
 * from it, membership, and the indexes `/sync` and the device-list delta need.
 *
 * The store keeps facts, not rules: who may send, invite or join is decided by the routes
 * (`routes/room-membership.ts`). Every event gets a position from one server-wide stream (Synapse's
 * `stream_ordering`), so a sync token holds a single number for all rooms.
 *
 * "Sharing a room" (for `device_lists`, Client-Server spec "Tracking the device list for a user")
 * is kept incrementally: `viewer` sees `other` while some room has `viewer` joined and `other`
 * joined or invited. Synapse tracks only joined users after the invite itself (it reports a newly
 * invited user once, as changed); the mock keeps telling the inviter about an invitee's key
 * changes, because clients encrypt for invited members too. A membership change costs O(members of
 * that room); reading who changed since a position visits only the viewer's entries after it.
 */

export type JsonObject = Record<string, unknown>;

export type Membership = "join" | "invite" | "leave" | "ban" | "knock";

/** An event as the server stored it; routes turn it into client-format JSON. */
export interface StoredEvent {
  eventId: string;
  roomId: string;
  type: string;
  sender: string;
  content: JsonObject;
  /** Present on state events (possibly `""`). */
  stateKey?: string;
  originServerTs: number;
  /** Server-wide stream position; larger is later. */
  position: number;
  /** The device and transaction id of the send, for `unsigned.transaction_id` on the sender's echo. */
  transaction?: { deviceId: string; txnId: string };
  /** Content of the state event this one replaced (`unsigned.prev_content`). */
  prevContent?: JsonObject;
}

export interface NewEvent {
  type: string;
  sender: string;
  content: JsonObject;
  stateKey?: string;
  originServerTs: number;
  transaction?: { deviceId: string; txnId: string };
}

/** A new event in a room; long-polls wake on it. */
export interface RoomChange {
  roomId: string;
  position: number;
  event: StoredEvent;
}

export type RoomListener = (change: RoomChange) => void;

/** One entry of a user's membership history: their membership in `roomId` became `membership`. */
export interface MembershipEntry {
  position: number;
  roomId: string;
  membership: Membership;
}

/** One change of whether `viewer` sees `userId` (see the file comment). */
interface SharingEntry {
  position: number;
  userId: string;
  sharing: boolean;
}

export interface SharingDelta {
  /** Users the viewer began to share a room with after the position (and still does). */
  started: string[];
  /** Users the viewer shared a room with at the position and no longer does. */
  stopped: string[];
}

export interface TimelineSlice {
  /** Oldest first. */
  events: StoredEvent[];
  /** Whether events in the range were left out because of `limit`. */
  limited: boolean;
}

interface Room {
  roomId: string;
  /** Ascending by position. */
  timeline: StoredEvent[];
  /** `type \0 stateKey` → events in order; the last one is current. */
  stateHistory: Map<string, StoredEvent[]>;
  members: Map<string, Membership>;
}

const stateKeyOf = (type: string, stateKey: string): string => `${type}\u0000${stateKey}`;

/** Memberships that let another user see your devices (see the file comment). */
const VISIBLE: ReadonlySet<Membership | undefined> = new Set(["join", "invite"]);

export class RoomStore {
  readonly #rooms = new Map<string, Room>();
  readonly #events = new Map<string, StoredEvent>();
  /** user → room → current membership (leave/ban included, so `/sync` can report left rooms). */
  readonly #userRooms = new Map<string, Map<string, Membership>>();
  /** user → their membership history, ascending. */
  readonly #membershipLog = new Map<string, MembershipEntry[]>();
  /** viewer → other → number of rooms through which viewer sees other. */
  readonly #sees = new Map<string, Map<string, number>>();
  /** viewer → history of `#sees` crossing zero, ascending. */
  readonly #sharingLog = new Map<string, SharingEntry[]>();
  /** Event ids by device and key, for `send/{type}/{txnId}` idempotency; forgotten after a day. */
  readonly #transactions: TransactionCache<string>;
  readonly #aliases = new Map<string, string>();
  readonly #listeners = new Set<RoomListener>();
  #position = 0;
  #workDone = 0;

  /** `clock` times out transaction ids; the server passes its own. */
  constructor(clock: Clock = systemClock) {
    this.#transactions = new TransactionCache(clock, ROOM_EVENT_TRANSACTION_TTL_MS);
  }

  /** The newest stream position handed out (0 before the first event). */
  get position(): number {
    return this.#position;
  }

  /** Log entries visited by delta reads so far — tests assert work per read, not time. */
  get workDone(): number {
    return this.#workDone;
  }

  /** Subscribes to new events in any room; returns the unsubscribe function. */
  onChange(listener: RoomListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // --- rooms and events -------------------------------------------------------------------------

  /** Registers an empty room; its `m.room.create` event is the caller's first `append`. */
  createRoom(roomId: string): void {
    if (this.#rooms.has(roomId)) throw new Error(`room ${roomId} exists`);
    this.#rooms.set(roomId, { roomId, timeline: [], stateHistory: new Map(), members: new Map() });
  }

  hasRoom(roomId: string): boolean {
    return this.#rooms.has(roomId);
  }

  /**
   * Appends an event to a room's timeline. A state event becomes current state; an
   * `m.room.member` event also updates memberships and the sharing index.
   */
  append(roomId: string, input: NewEvent, eventId: string): StoredEvent {
    const room = this.#room(roomId);
    const position = ++this.#position;
    const event: StoredEvent = {
      eventId,
      roomId,
      type: input.type,
      sender: input.sender,
      content: cloneJson(input.content),
      originServerTs: input.originServerTs,
      position,
    };
    if (input.transaction) event.transaction = { ...input.transaction };
    if (input.stateKey !== undefined) {
      event.stateKey = input.stateKey;
      const key = stateKeyOf(input.type, input.stateKey);
      const history = room.stateHistory.get(key) ?? [];
      const previous = history.at(-1);
      if (previous) event.prevContent = cloneJson(previous.content);
      history.push(event);
      room.stateHistory.set(key, history);
    }
    room.timeline.push(event);
    this.#events.set(eventId, event);
    if (input.type === "m.room.member" && input.stateKey !== undefined) {
      const membership = input.content.membership;
      if (isMembership(membership)) this.#setMembership(room, input.stateKey, membership, position);
    }
    this.#emit({ roomId, position, event });
    return event;
  }

  event(eventId: string): StoredEvent | undefined {
    return this.#events.get(eventId);
  }

  /** The current state event of `type`/`stateKey`, if any. */
  stateEvent(roomId: string, type: string, stateKey: string): StoredEvent | undefined {
    return this.#rooms.get(roomId)?.stateHistory.get(stateKeyOf(type, stateKey))?.at(-1);
  }

  /** The state event of `type`/`stateKey` as it was right after stream position `position`. */
  stateEventAt(roomId: string, type: string, stateKey: string, position: number): StoredEvent | undefined {
    const history = this.#rooms.get(roomId)?.stateHistory.get(stateKeyOf(type, stateKey));
    return history ? lastAtOrBefore(history, position) : undefined;
  }

  /** Every current state event of the room. */
  currentState(roomId: string): StoredEvent[] {
    return this.stateAt(roomId, Number.POSITIVE_INFINITY);
  }

  /** The room's state as it was right after stream position `position` (events at or before it). */
  stateAt(roomId: string, position: number): StoredEvent[] {
    const room = this.#rooms.get(roomId);
    if (!room) return [];
    const state: StoredEvent[] = [];
    for (const history of room.stateHistory.values()) {
      const at = lastAtOrBefore(history, position);
      if (at) state.push(at);
    }
    return state.sort((a, b) => a.position - b.position);
  }

  /**
   * State events that became current after `after` and are still current at `upTo`, or were
   * replaced in between (the latest one at `upTo` is returned): what an incremental sync sends.
   */
  stateChangedBetween(roomId: string, after: number, upTo: number): StoredEvent[] {
    const room = this.#rooms.get(roomId);
    if (!room) return [];
    const changed: StoredEvent[] = [];
    for (const history of room.stateHistory.values()) {
      const at = lastAtOrBefore(history, upTo);
      if (at && at.position > after) changed.push(at);
    }
    return changed.sort((a, b) => a.position - b.position);
  }

  /**
   * Timeline events with `after < position <= upTo`, at most the newest `limit`; `limited` tells
   * whether older ones in the range were cut. With `visible`, only events it accepts are returned
   * and counted (history visibility); the walk stops at the first accepted event past the limit.
   */
  timeline(
    roomId: string,
    after: number,
    upTo: number,
    limit: number,
    visible?: (event: StoredEvent) => boolean,
  ): TimelineSlice {
    const room = this.#rooms.get(roomId);
    if (!room) return { events: [], limited: false };
    const start = firstAfter(room.timeline, after);
    const end = firstAfter(room.timeline, upTo);
    if (!visible) {
      const from = Math.max(start, end - Math.max(0, limit));
      return { events: room.timeline.slice(from, end), limited: from > start };
    }
    const picked: StoredEvent[] = [];
    for (let i = end - 1; i >= start; i--) {
      const event = room.timeline[i]!;
      if (!visible(event)) continue;
      if (picked.length >= limit) return { events: picked.reverse(), limited: true };
      picked.push(event);
    }
    return { events: picked.reverse(), limited: false };
  }

  /**
   * Up to `limit` events walking away from the point just after stream position `position`
   * (`/messages`): `"b"` returns events at or before it, newest first; `"f"` events after it, oldest
   * first. With `visible`, others are skipped and not counted. `exhausted` says nothing is left.
   */
  paginate(
    roomId: string,
    position: number,
    dir: "b" | "f",
    limit: number,
    visible: (event: StoredEvent) => boolean = () => true,
  ): { events: StoredEvent[]; exhausted: boolean } {
    const room = this.#rooms.get(roomId);
    if (!room) return { events: [], exhausted: true };
    const events: StoredEvent[] = [];
    const step = dir === "f" ? 1 : -1;
    let i = firstAfter(room.timeline, position) + (dir === "f" ? 0 : -1);
    for (; i >= 0 && i < room.timeline.length; i += step) {
      const event = room.timeline[i]!;
      if (!visible(event)) continue;
      if (events.length >= limit) return { events, exhausted: false };
      events.push(event);
    }
    return { events, exhausted: true };
  }

  /**
   * Unread counts for `userId` in the spirit of Synapse's default push rules with no read
   * receipts: messages (`m.room.message` except notices, and `m.room.encrypted`) from others after
   * the user's own latest event, which Synapse also treats as read. A highlight is a message whose
   * intentional mentions (`m.mentions`, MSC3952) name the user or the room. Counts events up to
   * position `upTo` (a left room: up to the leave) and walks only the unread tail. Classic and
   * sliding sync both report these.
   */
  unreadCounts(
    roomId: string,
    userId: string,
    upTo = Number.POSITIVE_INFINITY,
  ): { notification_count: number; highlight_count: number } {
    const timeline = this.#rooms.get(roomId)?.timeline ?? [];
    let notifications = 0;
    let highlights = 0;
    for (let i = firstAfter(timeline, upTo) - 1; i >= 0; i--) {
      const event = timeline[i]!;
      if (event.sender === userId) break;
      const notice = event.type === "m.room.message" && event.content.msgtype === "m.notice";
      if ((event.type !== "m.room.message" && event.type !== "m.room.encrypted") || notice) continue;
      notifications++;
      const mentions = event.content["m.mentions"];
      if (typeof mentions === "object" && mentions !== null) {
        const { user_ids: ids, room: everyone } = mentions as { user_ids?: unknown; room?: unknown };
        if (everyone === true || (Array.isArray(ids) && ids.includes(userId))) highlights++;
      }
    }
    return { notification_count: notifications, highlight_count: highlights };
  }

  // --- membership -----------------------------------------------------------------------------

  membership(roomId: string, userId: string): Membership | undefined {
    return this.#rooms.get(roomId)?.members.get(userId);
  }

  /** Current membership of every user that has a member event in the room. */
  members(roomId: string): ReadonlyMap<string, Membership> {
    return this.#rooms.get(roomId)?.members ?? new Map();
  }

  /** Users whose membership is `join`. */
  joinedMembers(roomId: string): string[] {
    return [...this.members(roomId)].filter(([, m]) => m === "join").map(([u]) => u);
  }

  /** Every room the user has a membership in (leave and ban included), with that membership. */
  roomsOf(userId: string): ReadonlyMap<string, Membership> {
    return this.#userRooms.get(userId) ?? new Map();
  }

  /** Rooms where the user's membership changed after `after`, with the latest change per room. */
  membershipChangesSince(userId: string, after: number): MembershipEntry[] {
    const log = this.#membershipLog.get(userId) ?? [];
    const latest = new Map<string, MembershipEntry>();
    for (let i = firstAfter(log, after); i < log.length; i++) {
      this.#workDone++;
      latest.set(log[i]!.roomId, log[i]!);
    }
    return [...latest.values()];
  }

  /** The user's membership in a room as it was right after `position` (`undefined` if none yet). */
  membershipAt(userId: string, roomId: string, position: number): Membership | undefined {
    const log = this.#membershipLog.get(userId) ?? [];
    let found: Membership | undefined;
    for (let i = firstAfter(log, position) - 1; i >= 0; i--) {
      this.#workDone++;
      if (log[i]!.roomId === roomId) {
        found = log[i]!.membership;
        break;
      }
    }
    return found;
  }

  // --- sharing (device lists) -----------------------------------------------------------------

  /** Whether `viewer` currently sees `other`'s device changes. Everyone sees themselves. */
  sees(viewer: string, other: string): boolean {
    return viewer === other || (this.#sees.get(viewer)?.get(other) ?? 0) > 0;
  }

  /** Users `viewer` currently sees, themselves excluded. */
  usersSeenBy(viewer: string): string[] {
    return [...(this.#sees.get(viewer)?.keys() ?? [])];
  }

  /**
   * Who `viewer` started or stopped seeing after `after`. A user who stopped and started again is
   * `started` (they may have changed devices meanwhile, so the client must re-query them); one who
   * started and stopped again is in neither list.
   */
  sharingChangesSince(viewer: string, after: number): SharingDelta {
    const log = this.#sharingLog.get(viewer) ?? [];
    const wasSharing = new Map<string, boolean>();
    const startedSince = new Set<string>();
    for (let i = firstAfter(log, after); i < log.length; i++) {
      const entry = log[i]!;
      this.#workDone++;
      // The first entry after `after` flips the state that held at `after`.
      if (!wasSharing.has(entry.userId)) wasSharing.set(entry.userId, !entry.sharing);
      if (entry.sharing) startedSince.add(entry.userId);
    }
    const started: string[] = [];
    const stopped: string[] = [];
    for (const [userId, was] of wasSharing) {
      const now = this.sees(viewer, userId);
      if (now && startedSince.has(userId)) started.push(userId);
      else if (!now && was) stopped.push(userId);
    }
    return { started, stopped };
  }

  // --- aliases ------------------------------------------------------------------------------

  /** Points `alias` (`#name:server`) at a room; false if the alias is taken. */
  addAlias(alias: string, roomId: string): boolean {
    if (this.#aliases.has(alias)) return false;
    this.#aliases.set(alias, roomId);
    return true;
  }

  resolveAlias(alias: string): string | undefined {
    return this.#aliases.get(alias);
  }

  // --- transactions ---------------------------------------------------------------------------

  /**
   * The event a device already sent under `key` (path-scoped txn id, MSC3970) within the last 24
   * hours, if any: Synapse's `event_txn_id_device_id` rows live that long.
   */
  transaction(userId: string, deviceId: string, key: string): string | undefined {
    return this.#transactions.get(userId, deviceId, key);
  }

  recordTransaction(userId: string, deviceId: string, key: string, eventId: string): void {
    this.#transactions.record(userId, deviceId, key, eventId);
  }

  /** How many transaction ids are remembered now. */
  get transactionCount(): number {
    return this.#transactions.size;
  }

  // --- internals ------------------------------------------------------------------------------

  #room(roomId: string): Room {
    const room = this.#rooms.get(roomId);
    if (!room) throw new Error(`unknown room ${roomId}`);
    return room;
  }

  #setMembership(room: Room, userId: string, membership: Membership, position: number): void {
    const old = room.members.get(userId);
    if (old === membership) return;
    room.members.set(userId, membership);
    let rooms = this.#userRooms.get(userId);
    if (!rooms) {
      rooms = new Map();
      this.#userRooms.set(userId, rooms);
    }
    rooms.set(room.roomId, membership);
    let log = this.#membershipLog.get(userId);
    if (!log) {
      log = [];
      this.#membershipLog.set(userId, log);
    }
    log.push({ position, roomId: room.roomId, membership });

    for (const [other, otherMembership] of room.members) {
      if (other === userId) continue;
      // Does `other` see `userId`? Needs `other` joined and `userId` joined or invited.
      if (otherMembership === "join") {
        const before = VISIBLE.has(old);
        const after = VISIBLE.has(membership);
        if (before !== after) this.#adjust(other, userId, after ? 1 : -1, position);
      }
      // Does `userId` see `other`? Needs `userId` joined and `other` joined or invited.
      if (VISIBLE.has(otherMembership)) {
        const before = old === "join";
        const after = membership === "join";
        if (before !== after) this.#adjust(userId, other, after ? 1 : -1, position);
      }
    }
  }

  #adjust(viewer: string, other: string, delta: 1 | -1, position: number): void {
    let counts = this.#sees.get(viewer);
    if (!counts) {
      counts = new Map();
      this.#sees.set(viewer, counts);
    }
    const before = counts.get(other) ?? 0;
    const after = before + delta;
    if (after === 0) counts.delete(other);
    else counts.set(other, after);
    if ((before === 0) !== (after === 0)) {
      let log = this.#sharingLog.get(viewer);
      if (!log) {
        log = [];
        this.#sharingLog.set(viewer, log);
      }
      log.push({ position, userId: other, sharing: after > 0 });
    }
  }

  #emit(change: RoomChange): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(change);
      } catch {
        // A failing listener (a closed long-poll) must not break the write that triggered it.
      }
    }
  }
}

function isMembership(value: unknown): value is Membership {
  return value === "join" || value === "invite" || value === "leave" || value === "ban" || value === "knock";
}

/** Index of the first entry with `position > after` (binary search over an ascending array). */
function firstAfter(list: readonly { position: number }[], after: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.position <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function lastAtOrBefore<T extends { position: number }>(list: readonly T[], position: number): T | undefined {
  const i = firstAfter(list, position);
  return i > 0 ? list[i - 1] : undefined;
}
