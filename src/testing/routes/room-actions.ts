import { newEventId } from "../random-ids.js";
import { MatrixError } from "../route.js";
import { canonicalJson } from "../state/canonical-json.js";
import type { Membership, StoredEvent } from "../state/room-store.js";
import type { ServerState } from "../state/server-state.js";
import { namedPowerLevel, sendPowerLevel, userPowerLevel } from "./power-levels.js";

/**
 * Writing to rooms with the auth rules of room versions 1–11 (Client-Server spec, "Room
 * membership"; Synapse's `event_auth.py`), as every room route does it. Errors are the 403
 * `M_FORBIDDEN` Synapse sends, with its messages (its unstable error codes are off by default).
 */

/** Synapse's limit on a whole event (`MAX_PDU_SIZE`); the mock measures the content alone. */
export const MAX_EVENT_CONTENT_BYTES = 65_536;

export interface Transaction {
  deviceId: string;
  txnId: string;
}

/** An event a user writes: a state event when `stateKey` is set (`""` included). */
export interface RoomEventInput {
  type: string;
  content: Record<string, unknown>;
  stateKey?: string;
}

const utf8 = new TextEncoder();

function forbidden(message: string): MatrixError {
  return new MatrixError(403, "M_FORBIDDEN", message);
}

function checkSize(content: Record<string, unknown>): void {
  if (utf8.encode(canonicalJson(content)).length > MAX_EVENT_CONTENT_BYTES) {
    throw new MatrixError(413, "M_TOO_LARGE", "event too large");
  }
}

/**
 * The current state event when `sender` sent it with this very content: Synapse does not send such
 * an event again but answers with the existing one (`EventCreationHandler.deduplicate_state_event`).
 */
function unchangedState(
  state: ServerState,
  roomId: string,
  sender: string,
  event: Required<RoomEventInput>,
): StoredEvent | undefined {
  const current = state.rooms.stateEvent(roomId, event.type, event.stateKey);
  if (!current || current.sender !== sender) return undefined;
  return canonicalJson(current.content) === canonicalJson(event.content) ? current : undefined;
}

function requireJoined(state: ServerState, roomId: string, userId: string): void {
  if (state.rooms.membership(roomId, userId) !== "join") {
    throw forbidden(`User ${userId} not in room ${roomId}`);
  }
}

/** Appends without auth checks: only for the events that found a room (`createRoom`). */
export function appendEvent(
  state: ServerState,
  roomId: string,
  sender: string,
  event: RoomEventInput,
  transaction?: Transaction,
): StoredEvent {
  return state.rooms.append(
    roomId,
    {
      type: event.type,
      sender,
      content: event.content,
      ...(event.stateKey !== undefined ? { stateKey: event.stateKey } : {}),
      originServerTs: state.clock.now(),
      ...(transaction ? { transaction } : {}),
    },
    newEventId(),
  );
}

/**
 * A message or state event from a joined member with enough power. A state event whose content
 * equals the current one is not sent again: the existing event is returned (as Synapse dedupes).
 * Membership goes through `changeMembership`.
 */
export function sendRoomEvent(
  state: ServerState,
  roomId: string,
  sender: string,
  event: RoomEventInput,
  transaction?: Transaction,
): StoredEvent {
  checkSize(event.content);
  requireJoined(state, roomId, sender);
  const isState = event.stateKey !== undefined;
  const needed = sendPowerLevel(state.rooms, roomId, event.type, isState);
  const level = userPowerLevel(state.rooms, roomId, sender);
  if (level < needed) {
    throw forbidden(
      `You don't have permission to post that to the room. user_level (${level}) < send_level (${needed})`,
    );
  }
  if (event.stateKey !== undefined) {
    // A state key starting with `@` belongs to that user only (room versions 1–11).
    if (event.stateKey.startsWith("@") && event.stateKey !== sender) {
      throw forbidden("You are not allowed to set others state");
    }
    const existing = unchangedState(state, roomId, sender, { ...event, stateKey: event.stateKey });
    if (existing) return existing;
  }
  return appendEvent(state, roomId, sender, event, transaction);
}

export interface MembershipChange {
  roomId: string;
  sender: string;
  target: string;
  membership: Membership;
  /** Extra content: `reason`, `is_direct`, … (`membership`, `displayname`, `avatar_url` are set here). */
  extra?: Record<string, unknown>;
}

/**
 * A membership change after the auth rules for `m.room.member`. Joins and invites carry the
 * target's profile, as Synapse adds it. Repeating the current membership with the same content
 * returns the existing event.
 */
export function changeMembership(state: ServerState, change: MembershipChange): StoredEvent {
  const { rooms } = state;
  const { roomId, sender, target, membership } = change;
  const caller = rooms.membership(roomId, sender);
  const current = rooms.membership(roomId, target);
  const senderLevel = userPowerLevel(rooms, roomId, sender);
  const targetLevel = userPowerLevel(rooms, roomId, target);

  if (membership !== "join" && membership !== "knock") {
    const ownRejection =
      membership === "leave" && target === sender && (caller === "invite" || caller === "knock");
    if (!ownRejection && caller !== "join") throw forbidden(`${sender} not in room ${roomId}.`);
  }
  switch (membership) {
    case "invite":
      if (current === "ban") throw forbidden(`${target} is banned from the room`);
      if (current === "join") throw forbidden(`${target} is already in the room.`);
      if (senderLevel < namedPowerLevel(rooms, roomId, "invite")) {
        throw forbidden("You don't have permission to invite users");
      }
      break;
    case "join": {
      if (sender !== target) throw forbidden("Cannot force another user to join.");
      if (current === "ban") throw forbidden("You are banned from this room");
      const joinRule = rooms.stateEvent(roomId, "m.room.join_rules", "")?.content.join_rule ?? "invite";
      if (joinRule !== "public" && caller !== "join" && caller !== "invite") {
        throw forbidden(
          joinRule === "invite"
            ? "You are not invited to this room."
            : "You are not allowed to join this room",
        );
      }
      break;
    }
    case "leave":
      if (current === "ban" && senderLevel < namedPowerLevel(rooms, roomId, "ban")) {
        throw forbidden(`You cannot unban user ${target}.`);
      }
      if (target !== sender && current !== "ban") {
        if (senderLevel < namedPowerLevel(rooms, roomId, "kick") || senderLevel <= targetLevel) {
          throw forbidden(`You cannot kick user ${target}.`);
        }
      }
      break;
    case "ban":
      if (senderLevel < namedPowerLevel(rooms, roomId, "ban"))
        throw forbidden("You don't have permission to ban");
      if (senderLevel <= targetLevel) throw forbidden("You don't have permission to ban this user");
      break;
    case "knock":
      throw forbidden("You don't have permission to knock");
  }

  const content: Record<string, unknown> = { ...change.extra, membership };
  if (membership === "join" || membership === "invite") {
    const profile = state.userProfiles.get(target);
    if (profile.displayname !== undefined) content.displayname = profile.displayname;
    if (profile.avatar_url !== undefined) content.avatar_url = profile.avatar_url;
  }
  checkSize(content);
  const event = { type: "m.room.member", stateKey: target, content };
  return unchangedState(state, roomId, sender, event) ?? appendEvent(state, roomId, sender, event);
}

/** The `m.room.create` and creator's join, written without auth checks (they found the room). */
export function foundRoom(
  state: ServerState,
  roomId: string,
  creator: string,
  createContent: Record<string, unknown>,
): void {
  state.rooms.createRoom(roomId);
  appendEvent(state, roomId, creator, { type: "m.room.create", stateKey: "", content: createContent });
  const profile = state.userProfiles.get(creator);
  appendEvent(state, roomId, creator, {
    type: "m.room.member",
    stateKey: creator,
    content: { membership: "join", ...profile },
  });
}
