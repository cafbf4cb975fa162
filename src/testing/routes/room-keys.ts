import type { Profile } from "../profiles.js";
import { MatrixError, type Route } from "../route.js";
import type { ServerState } from "../state/server-state.js";

/**
 * Server-side key backup is out of scope for the mock: every user has none, which is what
 * matrix-js-sdk expects to see as 404 `M_NOT_FOUND` (spec, "Server-side key backups").
 */
export const roomKeysRoutes: Route<ServerState, Profile>[] = [
  {
    method: "GET",
    pattern: "/_matrix/client/v3/room_keys/version",
    handler: (ctx) => {
      throw new MatrixError(404, "M_NOT_FOUND", ctx.profile.noBackupMessage);
    },
  },
];
