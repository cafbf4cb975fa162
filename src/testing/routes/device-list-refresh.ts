import type { Profile } from "../profiles.js";
import { MatrixError, type MockResponse, type Route, type RouteContext } from "../route.js";
import type { ServerState } from "../state/server-state.js";
import { wrongMethod } from "./dehydration-gate.js";
import { requireUserId } from "./matrix-ids.js";

/**
 * MSC2638 (`proposals/2638-client-request-device-list.md`, closed, implemented by no server): a
 * client asks its server to resync a user's device list. 202 `{}` at once; the resync runs
 * afterwards on the server's clock and its result reaches clients through `device_lists.changed`;
 * a failure shows in `keys/query` `failures` while the server retries (state/remote-device-lists.ts).
 *
 * Served under the profile's `deviceListRefresh` only; otherwise the paths are unknown, 404
 * `M_UNRECOGNIZED`, as every real server answers them. Paths: the MSC's `POST
 * /_matrix/client/r0/user/{userId}/devices/refresh` (also under `/v3/`, as every client path), its
 * unstable-prefix section's `GET /_matrix/unstable/org.matrix.msc2638/user/{userId}/devices`
 * (another method and no `/client/`, as the MSC writes it), and `POST
 * /_matrix/client/unstable/org.matrix.msc2638/user/{userId}/devices/refresh`, the stable path under
 * the usual unstable prefix, which no text names but a client may try.
 *
 * The MSC defines no errors; the mock adds those its review asked for: a malformed user id is 400
 * `M_INVALID_PARAM` (Synapse's `UserID.from_string` answer), and asking again for the same user
 * within `refreshRateLimitMs` is 429 `M_LIMIT_EXCEEDED` with `retry_after_ms` (and `Retry-After` in
 * whole seconds, as Synapse's `LimitExceededError` sends it).
 */

type Ctx = RouteContext<ServerState, Profile>;

export const DEVICE_LIST_REFRESH_UNSTABLE_PREFIX = "org.matrix.msc2638";

function refresh(ctx: Ctx): MockResponse {
  if (!ctx.profile.deviceListRefresh) {
    throw new MatrixError(404, "M_UNRECOGNIZED", ctx.profile.unknownPathMessage);
  }
  const caller = ctx.caller();
  const target = ctx.params.userId ?? "";
  requireUserId(target);
  const limited = ctx.state.remoteDeviceLists.requestRefresh(caller.userId, target);
  if (limited) {
    const { retryAfterMs } = limited;
    throw new MatrixError(
      429,
      "M_LIMIT_EXCEEDED",
      "Too Many Requests",
      { retry_after_ms: retryAfterMs },
      { "Retry-After": String(Math.ceil(retryAfterMs / 1000)) },
    );
  }
  return { status: 202, body: {} };
}

/** Other methods on a refresh path: 405 when the feature is on, an unknown path (404) when off. */
function otherMethod(ctx: Ctx): MockResponse {
  if (!ctx.profile.deviceListRefresh) {
    throw new MatrixError(404, "M_UNRECOGNIZED", ctx.profile.unknownPathMessage);
  }
  return wrongMethod(ctx);
}

const METHODS = ["GET", "POST", "PUT", "DELETE"] as const;

/** Every method is routed so that, with the feature off, none of them can answer 405. */
function routesFor(pattern: string, method: (typeof METHODS)[number]): Route<ServerState, Profile>[] {
  return METHODS.map((m) => ({ method: m, pattern, handler: m === method ? refresh : otherMethod }));
}

export const deviceListRefreshRoutes: Route<ServerState, Profile>[] = [
  // Also answers `/_matrix/client/r0/…`, the MSC's prefix: the router serves r0 as v3.
  ...routesFor("/_matrix/client/v3/user/{userId}/devices/refresh", "POST"),
  ...routesFor(
    `/_matrix/client/unstable/${DEVICE_LIST_REFRESH_UNSTABLE_PREFIX}/user/{userId}/devices/refresh`,
    "POST",
  ),
  ...routesFor(`/_matrix/unstable/${DEVICE_LIST_REFRESH_UNSTABLE_PREFIX}/user/{userId}/devices`, "GET"),
];
