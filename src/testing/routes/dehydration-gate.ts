import type { Profile } from "../profiles.js";
import { MatrixError, type MockResponse, type RouteContext } from "../route.js";

/** MSC3814 has only unstable paths (Synapse: `client_patterns(..., releases=())`). */
export const DEHYDRATED_DEVICE_PATH = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device";

/**
 * Every dehydration route calls this first: with the feature off the paths do not exist, so any
 * method gets the unknown-path answer (404 `M_UNRECOGNIZED`), which is how clients detect it.
 */
export function requireDehydration(ctx: Pick<RouteContext<unknown, Profile>, "profile">): void {
  if (!ctx.profile.dehydratedDevices) {
    throw new MatrixError(404, "M_UNRECOGNIZED", ctx.profile.unknownPathMessage);
  }
}

/**
 * A method the profile does not serve on a known path, answered as the router answers one: 405
 * `M_UNRECOGNIZED` (Synapse; tuwunel's router rewrites axum's bare 405 so), or an empty 405 under
 * `wrongMethodHasErrorBody: false`.
 */
export function wrongMethod(ctx: Pick<RouteContext<unknown, Profile>, "profile">): MockResponse {
  if (!ctx.profile.wrongMethodHasErrorBody) return { status: 405, body: null, bytes: new Uint8Array() };
  throw new MatrixError(405, "M_UNRECOGNIZED", "Unrecognized request");
}
