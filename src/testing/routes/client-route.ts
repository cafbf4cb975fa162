import type { Profile } from "../profiles.js";
import type { MockResponse, Route, RouteContext } from "../route.js";
import type { ServerState } from "../state/server-state.js";

/**
 * A client-server route at `/_matrix/client/v3/<path>`. The router answers `/r0/` paths with the
 * `/v3/` route, as Synapse's `client_patterns` serve both, so no route is declared twice.
 */
export function clientRoute(
  method: Route["method"],
  path: string,
  handler: (ctx: RouteContext<ServerState, Profile>) => MockResponse | Promise<MockResponse>,
): Route<ServerState, Profile> {
  return { method, pattern: `/_matrix/client/v3/${path}`, handler };
}
