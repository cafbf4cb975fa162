import { MatrixError } from "./route.js";

/**
 * The control API (`/_mock/…`) can create users, read every to-device inbox and fault every
 * request, so over HTTP it answers only to a bearer token when the server has one. In-process
 * `hs.control` calls need none: holding the object already grants everything. Errors use the
 * Client-Server API's shapes: no usable `Authorization` header is 401 `M_MISSING_TOKEN`, a wrong
 * token 403 `M_UNKNOWN_TOKEN` (no `soft_logout`: there is no session to refresh).
 */

/** Hosts only this machine can reach; anything else needs a control token (CLI, `startMockServer`). */
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "::1", "localhost"]);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host.toLowerCase());
}

/** A token fit for an `Authorization: Bearer` header: visible ASCII, no spaces. */
export function checkControlToken(token: string): void {
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new RangeError("controlToken must be a non-empty string of visible ASCII characters");
  }
}

/** The error for a control request that does not carry `token`, or `undefined` when it does. */
export function controlTokenError(headers: Headers, token: string): MatrixError | undefined {
  const header = headers.get("authorization");
  if (header === null) return new MatrixError(401, "M_MISSING_TOKEN", "Missing control token");
  const match = /^Bearer (\S+)$/.exec(header);
  if (!match) return new MatrixError(401, "M_MISSING_TOKEN", "Invalid Authorization header.");
  if (!sameString(match[1]!, token)) return new MatrixError(403, "M_UNKNOWN_TOKEN", "Unknown control token");
  return undefined;
}

/** Compares without stopping at the first difference, so timing does not reveal a prefix. */
function sameString(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    diff |= (a.charCodeAt(i) || 0) ^ (b.charCodeAt(i) || 0);
  }
  return diff === 0;
}

/**
 * Why a server on `host` must not start without a control token, or `undefined` when it may:
 * on loopback only local processes reach the API, elsewhere anyone on the network would.
 */
export function controlExposureError(host: string, controlToken: string | undefined): string | undefined {
  if (controlToken !== undefined || isLoopbackHost(host)) return undefined;
  return `refusing to serve the control API on ${host}, which is not a loopback address, without a control token`;
}
