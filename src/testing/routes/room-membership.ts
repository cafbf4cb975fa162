import type { Profile } from "../profiles.js";
import { MatrixError, type MockResponse, type Route, type RouteContext } from "../route.js";
import type { Membership } from "../state/room-store.js";
import type { ServerState } from "../state/server-state.js";
import { jsonObjectBody } from "../validation.js";
import { clientRoute } from "./client-route.js";
import { serverNameOf } from "./matrix-ids.js";
import { changeMembership } from "./room-actions.js";

/**
 * `invite`, `join` (by room id or alias), `leave`, `kick`, `ban`, `unban` (Client-Server spec,
 * "Room membership"). As Synapse's `RoomMembershipRestServlet`, an empty body counts as `{}` (a body
 * that is there must be a JSON object) and the body is read before the room is looked at; the auth
 * rules are in `room-actions.ts`.
 */

type Ctx = RouteContext<ServerState, Profile>;

function membershipBody(ctx: Ctx): Record<string, unknown> {
  return ctx.body === undefined ? {} : jsonObjectBody(ctx);
}

function reasonOf(body: Record<string, unknown>): Record<string, unknown> {
  return typeof body.reason === "string" ? { reason: body.reason } : {};
}

function targetOf(body: Record<string, unknown>): string {
  const userId = body.user_id;
  if (userId === undefined) throw new MatrixError(400, "M_MISSING_PARAM", "Missing params: ['user_id']");
  if (typeof userId !== "string" || serverNameOf(userId) === undefined) {
    throw new MatrixError(400, "M_INVALID_PARAM", "Invalid user_id");
  }
  return userId;
}

function knownRoom(ctx: Ctx, roomId: string): void {
  if (!ctx.state.rooms.hasRoom(roomId)) throw new MatrixError(404, "M_NOT_FOUND", "Not a known room");
}

function join(ctx: Ctx, roomIdOrAlias: string): MockResponse {
  const caller = ctx.caller();
  const body = membershipBody(ctx);
  let roomId = roomIdOrAlias;
  if (roomIdOrAlias.startsWith("#")) {
    const resolved = ctx.state.rooms.resolveAlias(roomIdOrAlias);
    if (resolved === undefined)
      throw new MatrixError(404, "M_NOT_FOUND", `Room alias ${roomIdOrAlias} not found`);
    roomId = resolved;
  } else if (!roomIdOrAlias.startsWith("!")) {
    throw new MatrixError(400, "M_UNKNOWN", `${roomIdOrAlias} was not legal room ID or room alias`);
  }
  // Synapse has nowhere to ask about a room it is not in: "No known servers".
  if (!ctx.state.rooms.hasRoom(roomId)) throw new MatrixError(404, "M_UNKNOWN", "No known servers");
  changeMembership(ctx.state, {
    roomId,
    sender: caller.userId,
    target: caller.userId,
    membership: "join",
    extra: reasonOf(body),
  });
  return { status: 200, body: { room_id: roomId } };
}

function onOther(membership: Membership) {
  return (ctx: Ctx): MockResponse => {
    const caller = ctx.caller();
    const roomId = ctx.params.roomId!;
    const body = membershipBody(ctx);
    const target = targetOf(body);
    if (!ctx.state.rooms.hasRoom(roomId)) {
      throw new MatrixError(403, "M_FORBIDDEN", `${caller.userId} not in room ${roomId}.`);
    }
    if (
      membership === "leave" &&
      ctx.path.endsWith("/unban") &&
      ctx.state.rooms.membership(roomId, target) !== "ban"
    ) {
      throw new MatrixError(
        403,
        "M_FORBIDDEN",
        "Cannot unban user who was not banned (membership=" +
          `${ctx.state.rooms.membership(roomId, target) ?? "none"}), user_id=${target}`,
      );
    }
    const kicked = ctx.state.rooms.membership(roomId, target);
    if (ctx.path.endsWith("/kick") && kicked !== "join" && kicked !== "invite" && kicked !== "knock") {
      throw new MatrixError(403, "M_FORBIDDEN", "The target user is not in the room");
    }
    const extra: Record<string, unknown> = { ...reasonOf(body) };
    if (membership === "invite" && body.is_direct === true) extra.is_direct = true;
    changeMembership(ctx.state, { roomId, sender: caller.userId, target, membership, extra });
    return { status: 200, body: {} };
  };
}

function leave(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  const body = membershipBody(ctx);
  const roomId = ctx.params.roomId!;
  knownRoom(ctx, roomId);
  const current = ctx.state.rooms.membership(roomId, caller.userId);
  if (current === undefined) {
    throw new MatrixError(403, "M_FORBIDDEN", `User ${caller.userId} has no membership in room ${roomId}`);
  }
  // Leaving a room you already left changes nothing.
  if (current === "leave") return { status: 200, body: {} };
  changeMembership(ctx.state, {
    roomId,
    sender: caller.userId,
    target: caller.userId,
    membership: "leave",
    extra: reasonOf(body),
  });
  return { status: 200, body: {} };
}

export const roomMembershipRoutes: Route<ServerState, Profile>[] = [
  clientRoute("POST", "rooms/{roomId}/invite", onOther("invite")),
  clientRoute("POST", "rooms/{roomId}/kick", onOther("leave")),
  clientRoute("POST", "rooms/{roomId}/ban", onOther("ban")),
  clientRoute("POST", "rooms/{roomId}/unban", onOther("leave")),
  clientRoute("POST", "rooms/{roomId}/join", (ctx) => join(ctx, ctx.params.roomId!)),
  clientRoute("POST", "join/{roomIdOrAlias}", (ctx) => join(ctx, ctx.params.roomIdOrAlias!)),
  clientRoute("POST", "rooms/{roomId}/leave", leave),
];
