import type { Profile } from "../profiles.js";
import { MatrixError, type MockResponse, type Route, type RouteContext } from "../route.js";
import type { ServerState } from "../state/server-state.js";
import { jsonObjectBody } from "../validation.js";
import { clientRoute } from "./client-route.js";

/**
 * `POST /user/{userId}/filter` and `GET /user/{userId}/filter/{filterId}` (Client-Server spec,
 * "Filtering"), as Synapse's filter servlets answer: only your own filters, stored as sent (Synapse
 * validates a filter when `/sync` uses it, not on upload), ids counting up from "0".
 */

type Ctx = RouteContext<ServerState, Profile>;

function createFilter(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  if (ctx.params.userId !== caller.userId) {
    throw new MatrixError(403, "M_FORBIDDEN", "Cannot create filters for other users");
  }
  const filter = jsonObjectBody(ctx);
  return { status: 200, body: { filter_id: ctx.state.filters.add(caller.userId, filter) } };
}

function getFilter(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  if (ctx.params.userId !== caller.userId) {
    throw new MatrixError(403, "M_FORBIDDEN", "Cannot get filters for other users");
  }
  const id = ctx.params.filterId!;
  if (!/^\d+$/.test(id)) throw new MatrixError(400, "M_UNKNOWN", "Invalid filter_id");
  const filter = ctx.state.filters.get(caller.userId, id);
  if (!filter) throw new MatrixError(404, "M_NOT_FOUND", "No such filter");
  return { status: 200, body: filter };
}

export const filterRoutes: Route<ServerState, Profile>[] = [
  clientRoute("POST", "user/{userId}/filter", createFilter),
  clientRoute("GET", "user/{userId}/filter/{filterId}", getFilter),
];
