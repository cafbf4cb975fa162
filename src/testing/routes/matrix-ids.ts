import { MatrixError } from "../route.js";
import { serverNameOf } from "../user-ids.js";

/**
 * User ids in the key and to-device endpoints. Synapse skips ids that do not parse in
 * `keys/query` and `sendToDevice`, and answers 400 `M_INVALID_PARAM` for them in `keys/claim`
 * (`UserID.from_string`). A user on another server is "remote": reachable only when the mock
 * hosts that server too (`state/remote-device-lists.ts`).
 */
export { serverNameOf };

export function requireUserId(userId: string): string {
  const server = serverNameOf(userId);
  if (server === undefined) {
    throw new MatrixError(400, "M_INVALID_PARAM", "Expected UserID of the form '@localname:domain'");
  }
  return server;
}

/**
 * What Synapse reports in `failures` for a server it cannot reach (a destination in backoff, from
 * `_NOT_READY_FOR_RETRY_FAILURE`): every server the mock does not host gets this entry, and so
 * does a hosted remote server made unreachable.
 */
export const unreachableServerFailure = Object.freeze({ status: 503, message: "Not ready for retry" });

/** Synapse's optional integer query parameter (`parse_integer`): present but not an integer → 400. */
export function optionalIntegerParam(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name);
  if (raw === null) return undefined;
  if (!/^-?\d+$/.test(raw)) {
    throw new MatrixError(400, "M_INVALID_PARAM", `Query parameter ${name} must be an integer`);
  }
  return Number(raw);
}
