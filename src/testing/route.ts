/**
 * The contract between the mock homeserver's router and its route modules. Route modules
 * (`routes/*.ts`) export `Route[]`; the router matches method + path, authenticates, parses the
 * body, and turns a thrown `MatrixError` into the JSON error response real servers send.
 */

/** A Matrix error exactly as a server sends it: HTTP status + `{errcode, error, ...extra}`. */
export class MatrixError extends Error {
  override name = "MatrixError";
  constructor(
    readonly status: number,
    readonly errcode: string,
    readonly error: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(`${status} ${errcode}: ${error}`);
  }
}

export interface MockResponse {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  /** Raw bytes sent instead of JSON `body` (media downloads); set `Content-Type` in `headers`. */
  bytes?: Uint8Array;
}

/** The authenticated caller: a user and the device its access token belongs to. */
export interface Caller {
  userId: string;
  deviceId: string;
  accessToken: string;
}

export interface RouteContext<State = unknown, Profile = unknown> {
  method: string;
  /** The request path (still URL-encoded), without the query string. */
  path: string;
  /** Decoded path parameters from `{name}` segments of the route pattern. */
  params: Record<string, string>;
  query: URLSearchParams;
  headers: Headers;
  /** The parsed JSON body (`undefined` when the request had none). Validate it before use. */
  body: unknown;
  /** The body as received, for routes marked `rawBody` (`null` when there was none). */
  rawBody?: Uint8Array | null;
  state: State;
  profile: Profile;
  /** The caller; throws 401 `M_MISSING_TOKEN` / `M_UNKNOWN_TOKEN` when not authenticated. */
  caller(): Caller;
  /** Long-polls and latency go through the server's clock so tests can drive them. */
  signal: AbortSignal;
}

export interface Route<State = unknown, Profile = unknown> {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** e.g. `/_matrix/client/v3/keys/query` or `/_matrix/client/v3/devices/{deviceId}`; `{x}` matches one segment. */
  pattern: string;
  /** Routes that need no access token (register, login, versions). */
  unauthenticated?: boolean;
  /** Accepts a soft-logged-out (expired) token, as Synapse's `allow_expired` does for logout. */
  allowExpiredToken?: boolean;
  /** The body is not JSON (media upload): `ctx.body` stays undefined and `ctx.rawBody` has the bytes. */
  rawBody?: boolean;
  handler(ctx: RouteContext<State, Profile>): MockResponse | Promise<MockResponse>;
}
