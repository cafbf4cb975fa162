import type { Profile } from "../profiles.js";
import { MatrixError, type Route } from "../route.js";
import type { ServerState } from "../state/server-state.js";
import { jsonObjectBody } from "../validation.js";

/**
 * Global account data (spec, "Client Config"). Content is any JSON object, stored as sent; secret
 * storage (`m.secret_storage.*`, `m.cross_signing.*`) lives here.
 */
const RESERVED_TYPES = new Set(["m.fully_read", "m.push_rules"]);

export const accountDataRoutes: Route<ServerState, Profile>[] = [
  {
    method: "PUT",
    pattern: "/_matrix/client/v3/user/{userId}/account_data/{type}",
    handler: (ctx) => {
      const caller = ctx.caller();
      if (ctx.params.userId !== caller.userId) {
        throw new MatrixError(403, "M_FORBIDDEN", "Cannot add account data for other users.");
      }
      const type = ctx.params.type!;
      if (RESERVED_TYPES.has(type)) {
        // Synapse answers 405 with M_BAD_JSON here; ruma-based servers 400.
        throw new MatrixError(
          ctx.profile.reservedAccountDataStatus,
          "M_BAD_JSON",
          `Cannot set ${type} through this API.`,
        );
      }
      const content = jsonObjectBody(ctx);
      ctx.state.accountData.set(caller.userId, type, content);
      return { status: 200, body: {} };
    },
  },
  {
    method: "GET",
    pattern: "/_matrix/client/v3/user/{userId}/account_data/{type}",
    handler: (ctx) => {
      const caller = ctx.caller();
      if (ctx.params.userId !== caller.userId) {
        throw new MatrixError(403, "M_FORBIDDEN", "Cannot get account data for other users.");
      }
      const content = ctx.state.accountData.get(caller.userId, ctx.params.type!);
      // MSC3391: `{}` marks deleted account data on servers that implement it.
      const deleted =
        content !== undefined && ctx.profile.emptyAccountDataIsDeleted && Object.keys(content).length === 0;
      if (content === undefined || deleted)
        throw new MatrixError(404, "M_NOT_FOUND", "Account data not found");
      return { status: 200, body: structuredClone(content) };
    },
  },
];
