import type { Profile } from "../profiles.js";
import { MatrixError, type Route } from "../route.js";
import { refreshSession } from "../session-tokens.js";
import type { ServerState } from "../state/server-state.js";
import { jsonObjectBody } from "../validation.js";

/**
 * `POST /refresh` (Client-Server spec v1.3+, "Refreshing access tokens"), as Synapse's
 * `RefreshTokenServlet` answers it: no access token needed (the one the client has is usually
 * expired); `refresh_token` absent → 400 `M_MISSING_PARAM`, present but not a string → 400
 * `M_INVALID_PARAM` (ruma-based servers: `M_BAD_JSON` for both); the answer carries a new access
 * token, a new refresh token and `expires_in_ms` when the new access token expires. The token
 * rules are in `state/session-token-store.ts`.
 */

export const refreshRoutes: Route<ServerState, Profile>[] = [
  {
    method: "POST",
    pattern: "/_matrix/client/v3/refresh",
    unauthenticated: true,
    handler: (ctx) => {
      const body = jsonObjectBody(ctx);
      const token = body.refresh_token;
      if (typeof token !== "string") {
        const absent = !Object.hasOwn(body, "refresh_token");
        if (ctx.profile.validationErrors === "ruma") {
          throw new MatrixError(400, "M_BAD_JSON", absent ? "missing field `refresh_token`" : "invalid type");
        }
        throw absent
          ? new MatrixError(400, "M_MISSING_PARAM", "Missing params: ['refresh_token']")
          : new MatrixError(400, "M_INVALID_PARAM", "Invalid param: refresh_token");
      }
      return { status: 200, body: refreshSession(ctx.state, token) };
    },
  },
];
