import { z } from "zod";
import type { Profile } from "../profiles.js";
import { newRoomId } from "../random-ids.js";
import { MatrixError, type MockResponse, type Route, type RouteContext } from "../route.js";
import type { Membership, StoredEvent } from "../state/room-store.js";
import type { ServerState } from "../state/server-state.js";
import { toClientEvent } from "../sync/client-event.js";
import { canSeeEvent } from "../sync/history-visibility.js";
import { formatPaginationToken, parsePaginationToken } from "../sync/sync-token.js";
import { jsonObjectBody, parseBody } from "../validation.js";
import { clientRoute } from "./client-route.js";
import { optionalIntegerParam, serverNameOf } from "./matrix-ids.js";
import { initialPowerLevels, type Preset } from "./power-levels.js";
import { appendEvent, changeMembership, foundRoom, sendRoomEvent } from "./room-actions.js";

/**
 * Room creation, sending, state, member lists and `/messages` (Client-Server spec, "Rooms" and
 * "Events"), with Synapse's defaults (`RoomCreationHandler`) and error answers. Membership changes
 * live in `room-membership.ts`; the auth rules in `room-actions.ts`.
 */

type Ctx = RouteContext<ServerState, Profile>;

const stateEventSchema = z.looseObject({
  type: z.string(),
  state_key: z.string().optional(),
  content: z.record(z.string(), z.unknown()),
});

const createRoomSchema = z.looseObject({
  visibility: z.enum(["public", "private"]).optional(),
  room_alias_name: z.string().optional(),
  name: z.string().optional(),
  topic: z.string().optional(),
  invite: z.array(z.string()).optional(),
  room_version: z.string().optional(),
  creation_content: z.record(z.string(), z.unknown()).optional(),
  initial_state: z.array(stateEventSchema).optional(),
  preset: z.string().optional(),
  is_direct: z.boolean().optional(),
  power_level_content_override: z.record(z.string(), z.unknown()).optional(),
});

const PRESETS: ReadonlySet<string> = new Set(["private_chat", "trusted_private_chat", "public_chat"]);

/** `creator` left `m.room.create` in room version 11 (MSC2175). */
const VERSIONS_WITH_CREATOR = new Set(["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]);

function roomVersions(profile: Profile): { default: string; available: Record<string, unknown> } {
  const rv = profile.capabilities["m.room_versions"] as
    | { default?: unknown; available?: Record<string, unknown> }
    | undefined;
  return {
    default: typeof rv?.default === "string" ? rv.default : "10",
    available: rv?.available ?? { "10": "stable" },
  };
}

function createRoom(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  const body = parseBody(ctx, createRoomSchema);
  const { state } = ctx;

  const versions = roomVersions(ctx.profile);
  const version = body.room_version ?? versions.default;
  if (!Object.hasOwn(versions.available, version)) {
    throw new MatrixError(
      400,
      "M_UNSUPPORTED_ROOM_VERSION",
      "Your homeserver does not support this room version",
    );
  }
  const presetName = body.preset ?? (body.visibility === "public" ? "public_chat" : "private_chat");
  if (!PRESETS.has(presetName))
    throw new MatrixError(400, "M_BAD_JSON", `${presetName} was not a valid preset`);
  const preset = presetName as Preset;
  const invitees = body.invite ?? [];
  for (const invitee of invitees) {
    if (serverNameOf(invitee) === undefined)
      throw new MatrixError(400, "M_UNKNOWN", `Invalid user_id: ${invitee}`);
  }
  let alias: string | undefined;
  if (body.room_alias_name !== undefined) {
    if (/[\s:]/.test(body.room_alias_name))
      throw new MatrixError(400, "M_UNKNOWN", "Invalid characters in room alias");
    alias = `#${body.room_alias_name}:${state.serverName}`;
    if (state.rooms.resolveAlias(alias) !== undefined) {
      throw new MatrixError(400, "M_ROOM_IN_USE", "Room alias already taken");
    }
  }

  const roomId = newRoomId(state.serverName);
  if (alias !== undefined) state.rooms.addAlias(alias, roomId);
  const createContent: Record<string, unknown> = { ...body.creation_content, room_version: version };
  if (VERSIONS_WITH_CREATOR.has(version)) createContent.creator = caller.userId;
  foundRoom(state, roomId, caller.userId, createContent);

  // Later entries for the same type and state key win, as in Synapse's dict of initial state.
  const initial = new Map<string, { type: string; stateKey: string; content: Record<string, unknown> }>();
  for (const e of body.initial_state ?? []) {
    initial.set(`${e.type}\u0000${e.state_key ?? ""}`, {
      type: e.type,
      stateKey: e.state_key ?? "",
      content: e.content,
    });
  }
  const take = (type: string) => {
    const key = `${type}\u0000`;
    const found = initial.get(key);
    initial.delete(key);
    return found?.content;
  };
  const write = (type: string, content: Record<string, unknown>, stateKey = "") =>
    appendEvent(state, roomId, caller.userId, { type, stateKey, content });

  write(
    "m.room.power_levels",
    take("m.room.power_levels") ??
      initialPowerLevels(caller.userId, preset, invitees, body.power_level_content_override),
  );
  if (alias !== undefined && !initial.has("m.room.canonical_alias\u0000"))
    write("m.room.canonical_alias", { alias });
  write(
    "m.room.join_rules",
    take("m.room.join_rules") ?? { join_rule: preset === "public_chat" ? "public" : "invite" },
  );
  write("m.room.history_visibility", take("m.room.history_visibility") ?? { history_visibility: "shared" });
  if (preset !== "public_chat")
    write("m.room.guest_access", take("m.room.guest_access") ?? { guest_access: "can_join" });
  for (const e of initial.values()) write(e.type, e.content, e.stateKey);
  if (body.name !== undefined) write("m.room.name", { name: body.name });
  if (body.topic !== undefined) {
    write("m.room.topic", { topic: body.topic, "m.topic": { "m.text": [{ body: body.topic }] } });
  }
  for (const invitee of invitees) {
    changeMembership(state, {
      roomId,
      sender: caller.userId,
      target: invitee,
      membership: "invite",
      ...(body.is_direct ? { extra: { is_direct: true } } : {}),
    });
  }
  return {
    status: 200,
    body: alias !== undefined ? { room_id: roomId, room_alias: alias } : { room_id: roomId },
  };
}

function requireRoom(ctx: Ctx): string {
  const roomId = ctx.params.roomId!;
  if (!ctx.state.rooms.hasRoom(roomId))
    throw new MatrixError(403, "M_FORBIDDEN", `User ${ctx.caller().userId} not in room ${roomId}`);
  return roomId;
}

function sendMessage(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  // Synapse reads the body before it looks at the room.
  const content = jsonObjectBody(ctx);
  const roomId = requireRoom(ctx);
  const type = ctx.params.eventType!;
  // Transaction ids are scoped to the device and the request path (spec, "Transaction identifiers"),
  // and remembered for a day, as Synapse's `event_txn_id_device_id` rows are.
  const key = `${roomId}\u0000${type}\u0000${ctx.params.txnId!}`;
  const earlier = ctx.state.rooms.transaction(caller.userId, caller.deviceId, key);
  if (earlier !== undefined) return { status: 200, body: { event_id: earlier } };
  const event = sendRoomEvent(
    ctx.state,
    roomId,
    caller.userId,
    { type, content },
    {
      deviceId: caller.deviceId,
      txnId: ctx.params.txnId!,
    },
  );
  ctx.state.rooms.recordTransaction(caller.userId, caller.deviceId, key, event.eventId);
  return { status: 200, body: { event_id: event.eventId } };
}

function putState(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  const content = jsonObjectBody(ctx);
  const roomId = requireRoom(ctx);
  const type = ctx.params.eventType!;
  const stateKey = ctx.params.stateKey ?? "";
  if (type === "m.room.member") {
    const membership = content.membership;
    if (membership !== "join" && membership !== "invite" && membership !== "leave" && membership !== "ban") {
      throw new MatrixError(400, "M_UNKNOWN", "Invalid membership key");
    }
    const { membership: _m, displayname: _d, avatar_url: _a, ...extra } = content;
    const event = changeMembership(ctx.state, {
      roomId,
      sender: caller.userId,
      target: stateKey,
      membership,
      extra,
    });
    return { status: 200, body: { event_id: event.eventId } };
  }
  const event = sendRoomEvent(ctx.state, roomId, caller.userId, { type, stateKey, content });
  return { status: 200, body: { event_id: event.eventId } };
}

/**
 * The stream position up to which `userId` may read a room's state and members: now while
 * joined, the moment they left otherwise (Synapse serves a left member the state at their leave).
 */
function readablePosition(ctx: Ctx, roomId: string, userId: string): number {
  const { rooms } = ctx.state;
  const membership = rooms.membership(roomId, userId);
  if (membership === "join") return rooms.position;
  if (membership === "leave" || membership === "ban") {
    const own = rooms.stateEvent(roomId, "m.room.member", userId);
    if (own) return own.position;
  }
  throw new MatrixError(
    403,
    "M_FORBIDDEN",
    `User ${userId} not in room ${roomId}, and room previews are disabled`,
  );
}

function viewerOf(ctx: Ctx) {
  const c = ctx.caller();
  return { userId: c.userId, deviceId: c.deviceId };
}

function clientEvent(ctx: Ctx, event: StoredEvent) {
  return toClientEvent(event, viewerOf(ctx), { includeRoomId: true, now: ctx.state.clock.now() });
}

function getState(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  const roomId = requireRoom(ctx);
  const at = readablePosition(ctx, roomId, caller.userId);
  return { status: 200, body: ctx.state.rooms.stateAt(roomId, at).map((e) => clientEvent(ctx, e)) };
}

function getStateEvent(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  const roomId = requireRoom(ctx);
  const at = readablePosition(ctx, roomId, caller.userId);
  const event = ctx.state.rooms.stateEventAt(roomId, ctx.params.eventType!, ctx.params.stateKey ?? "", at);
  if (!event) throw new MatrixError(404, "M_NOT_FOUND", "Event not found.");
  // `?format=event` (spec v1.x) returns the whole event instead of its content.
  if (ctx.query.get("format") === "event") return { status: 200, body: clientEvent(ctx, event) };
  return { status: 200, body: structuredClone(event.content) };
}

const MEMBERSHIPS: ReadonlySet<string> = new Set(["join", "invite", "leave", "ban", "knock"]);

function membershipParam(ctx: Ctx, name: string): Membership | undefined {
  const value = ctx.query.get(name);
  if (value === null) return undefined;
  if (!MEMBERSHIPS.has(value)) {
    throw new MatrixError(
      400,
      "M_INVALID_PARAM",
      `Query parameter ${JSON.stringify(name)} must be one of [join, invite, leave, ban, knock]`,
    );
  }
  return value as Membership;
}

function getMembers(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  const roomId = requireRoom(ctx);
  const at = readablePosition(ctx, roomId, caller.userId);
  const only = membershipParam(ctx, "membership");
  const not = membershipParam(ctx, "not_membership");
  // `at` (a sync token) is accepted and ignored: members come from the state the caller may read.
  const chunk = ctx.state.rooms
    .stateAt(roomId, at)
    .filter((e) => e.type === "m.room.member")
    .filter((e) => {
      const m = e.content.membership;
      return (only === undefined || m === only) && (not === undefined || m !== not);
    })
    .map((e) => clientEvent(ctx, e));
  return { status: 200, body: { chunk } };
}

function getJoinedMembers(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  const roomId = requireRoom(ctx);
  if (ctx.state.rooms.membership(roomId, caller.userId) !== "join") {
    throw new MatrixError(403, "M_FORBIDDEN", `User ${caller.userId} not in room ${roomId}`);
  }
  const joined: Record<string, { display_name: string | null; avatar_url: string | null }> = {};
  for (const userId of ctx.state.rooms.joinedMembers(roomId)) {
    const content = ctx.state.rooms.stateEvent(roomId, "m.room.member", userId)?.content ?? {};
    joined[userId] = {
      display_name: typeof content.displayname === "string" ? content.displayname : null,
      avatar_url: typeof content.avatar_url === "string" ? content.avatar_url : null,
    };
  }
  return { status: 200, body: { joined } };
}

/** Synapse's `PaginationConfig`: default 10, capped at 1000. */
const MESSAGES_MAX_LIMIT = 1000;

function getMessages(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  const roomId = requireRoom(ctx);
  const { rooms } = ctx.state;
  const membership = rooms.membership(roomId, caller.userId);
  if (membership === undefined) {
    throw new MatrixError(
      403,
      "M_FORBIDDEN",
      `User ${caller.userId} not in room ${roomId}, and room previews are disabled`,
    );
  }
  const dirParam = ctx.query.get("dir") ?? "f";
  if (dirParam !== "b" && dirParam !== "f") {
    throw new MatrixError(400, "M_INVALID_PARAM", 'Query parameter "dir" must be one of [b, f]');
  }
  const dir: "b" | "f" = dirParam;
  const limit = Math.min(Math.max(optionalIntegerParam(ctx.query, "limit") ?? 10, 0), MESSAGES_MAX_LIMIT);
  const filter = ctx.query.get("filter");
  if (filter !== null) {
    try {
      JSON.parse(filter);
    } catch {
      throw new MatrixError(400, "M_NOT_JSON", "Invalid filter JSON");
    }
  }
  const parseToken = (name: string): number | undefined => {
    const raw = ctx.query.get(name);
    if (raw === null || raw === "") return undefined;
    const position = parsePaginationToken(raw);
    if (position === undefined) throw new MatrixError(400, "M_UNKNOWN", `'${name}' parameter is invalid`);
    return Math.min(position, rooms.position);
  };
  const from = parseToken("from") ?? (dir === "b" ? rooms.position : 0);
  const to = parseToken("to");
  const visible = (e: StoredEvent) =>
    canSeeEvent(rooms, caller.userId, e) &&
    (to === undefined || (dir === "b" ? e.position > to : e.position <= to));
  const page = rooms.paginate(roomId, from, dir, limit, visible);
  const chunk = page.events.map((e) => clientEvent(ctx, e));
  const body: Record<string, unknown> = { chunk, start: formatPaginationToken(from) };
  const last = page.events.at(-1);
  // `end` is left out when there is nothing more in that direction (spec, GET /messages).
  if (!page.exhausted && last)
    body.end = formatPaginationToken(dir === "b" ? last.position - 1 : last.position);
  return { status: 200, body };
}

export const roomRoutes: Route<ServerState, Profile>[] = [
  clientRoute("POST", "createRoom", createRoom),
  clientRoute("PUT", "rooms/{roomId}/send/{eventType}/{txnId}", sendMessage),
  clientRoute("GET", "rooms/{roomId}/state", getState),
  clientRoute("GET", "rooms/{roomId}/state/{eventType}", getStateEvent),
  clientRoute("GET", "rooms/{roomId}/state/{eventType}/", getStateEvent),
  clientRoute("GET", "rooms/{roomId}/state/{eventType}/{stateKey}", getStateEvent),
  clientRoute("PUT", "rooms/{roomId}/state/{eventType}", putState),
  clientRoute("PUT", "rooms/{roomId}/state/{eventType}/", putState),
  clientRoute("PUT", "rooms/{roomId}/state/{eventType}/{stateKey}", putState),
  clientRoute("GET", "rooms/{roomId}/members", getMembers),
  clientRoute("GET", "rooms/{roomId}/joined_members", getJoinedMembers),
  clientRoute("GET", "rooms/{roomId}/messages", getMessages),
];
