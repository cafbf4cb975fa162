import { MatrixError } from "../route.js";

/**
 * User ids in the key and to-device endpoints. Synapse skips ids that do not parse in
 * `keys/query` and `sendToDevice`, and answers 400 `M_INVALID_PARAM` for them in `keys/claim`
 * (`UserID.from_string`); a user on another server is "remote" — the mock has no federation.
 */
const USER_ID = /^@[^:\s]*:([^\s/]+)$/;

/** The server name of a well-formed user id, or `undefined` for a malformed one. */
export function serverNameOf(userId: string): string | undefined {
  return USER_ID.exec(userId)?.[1];
}

export function requireUserId(userId: string): string {
  const server = serverNameOf(userId);
  if (server === undefined) {
    throw new MatrixError(400, "M_INVALID_PARAM", "Expected UserID of the form '@localname:domain'");
  }
  return server;
}

/**
 * What Synapse reports in `failures` for a server it cannot reach; the mock cannot reach any other
 * server, so every remote user's server gets this entry (a destination in backoff, from
 * `_NOT_READY_FOR_RETRY_FAILURE`).
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
