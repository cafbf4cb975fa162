import type { Profile } from "../profiles.js";
import { MatrixError, type MockResponse, type Route, type RouteContext } from "../route.js";
import type { ServerState } from "../state/server-state.js";
import type { ProfileField } from "../state/user-profile-store.js";
import { jsonObjectBody } from "../validation.js";
import { clientRoute } from "./client-route.js";
import { changeMembership } from "./room-actions.js";

/**
 * `GET /profile/{userId}` and the `displayname` / `avatar_url` fields (Client-Server spec,
 * "Profiles"), with Synapse's checks. Changing your profile updates your member event in every
 * room you are joined to, as Synapse does (`update_membership` with the new profile).
 */

type Ctx = RouteContext<ServerState, Profile>;

/** Synapse `MAX_DISPLAYNAME_LEN` and `MAX_AVATAR_URL_LEN`. */
const MAX_LENGTH: Record<ProfileField, number> = { displayname: 256, avatar_url: 1000 };

function requireKnownUser(ctx: Ctx, userId: string): void {
  if (!ctx.state.accounts.userExists(userId))
    throw new MatrixError(404, "M_NOT_FOUND", "Profile was not found");
}

function getProfile(ctx: Ctx): MockResponse {
  ctx.caller();
  const userId = ctx.params.userId!;
  requireKnownUser(ctx, userId);
  return { status: 200, body: ctx.state.userProfiles.get(userId) };
}

function getField(field: ProfileField) {
  return (ctx: Ctx): MockResponse => {
    ctx.caller();
    const userId = ctx.params.userId!;
    requireKnownUser(ctx, userId);
    const value = ctx.state.userProfiles.get(userId)[field];
    if (value === undefined)
      throw new MatrixError(404, "M_NOT_FOUND", "The requested profile key does not exist.");
    return { status: 200, body: { [field]: value } };
  };
}

function setField(field: ProfileField) {
  return (ctx: Ctx): MockResponse => {
    const caller = ctx.caller();
    const userId = ctx.params.userId!;
    const body = jsonObjectBody(ctx);
    if (!Object.hasOwn(body, field)) throw new MatrixError(400, "M_MISSING_PARAM", `Missing key '${field}'`);
    const value = body[field];
    // Synapse answers these with 400 (an `AuthError`, so `M_FORBIDDEN`), not 403.
    if (userId !== caller.userId)
      throw new MatrixError(400, "M_FORBIDDEN", `Cannot set another user's ${field}`);
    if (typeof value !== "string")
      throw new MatrixError(400, "M_INVALID_PARAM", `'${field}' must be a string`);
    if (value.length > MAX_LENGTH[field]) {
      const what = field === "displayname" ? "Displayname" : "Avatar URL";
      throw new MatrixError(400, "M_UNKNOWN", `${what} is too long (max ${MAX_LENGTH[field]})`);
    }
    ctx.state.userProfiles.set(userId, field, value);
    for (const [roomId, membership] of ctx.state.rooms.roomsOf(userId)) {
      if (membership !== "join") continue;
      const current = ctx.state.rooms.stateEvent(roomId, "m.room.member", userId)?.content ?? {};
      const { membership: _m, displayname: _d, avatar_url: _a, ...extra } = current;
      changeMembership(ctx.state, { roomId, sender: userId, target: userId, membership: "join", extra });
    }
    return { status: 200, body: {} };
  };
}

export const profileRoutes: Route<ServerState, Profile>[] = [
  clientRoute("GET", "profile/{userId}", getProfile),
  clientRoute("GET", "profile/{userId}/displayname", getField("displayname")),
  clientRoute("PUT", "profile/{userId}/displayname", setField("displayname")),
  clientRoute("GET", "profile/{userId}/avatar_url", getField("avatar_url")),
  clientRoute("PUT", "profile/{userId}/avatar_url", setField("avatar_url")),
];
