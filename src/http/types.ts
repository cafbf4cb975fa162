import type { z } from "zod";

/**
 * How a request may be retried automatically. Only requests that are safe to repeat are retried:
 * GETs, `keys/query`, sends made idempotent by their txnId, the dehydrated-device PUT. Never
 * `keys/claim` (a replay burns one-time keys) or anything else whose replay has side effects.
 */
export type RetryMode = "safe" | "never";

/** The methods the Client-Server API uses. */
export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";

/** One request through the transport, with the schema its response must satisfy. */
export interface MatrixRequest<S extends z.ZodType = z.ZodType> {
  method: HttpMethod;
  /** Path below the base URL, already URL-encoded per segment, e.g. `/_matrix/client/v3/keys/query`. */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** JSON body; omitted for GET/DELETE unless given. */
  body?: unknown;
  /** Schema the response body must satisfy; a mismatch becomes a typed `MalformedResponseError`. */
  schema: S;
  /** Defaults: "safe" for GET, "never" otherwise. */
  retry?: RetryMode;
  /** Send without the access token (register, login, versions). */
  unauthenticated?: boolean;
  /** Per-attempt timeout in ms; must exceed any long-poll timeout the request asks the server for. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The single seam every feature module talks to the homeserver through. */
export interface MatrixHttp {
  request<S extends z.ZodType>(req: MatrixRequest<S>): Promise<z.infer<S>>;
}

/**
 * Codes of the plain `SdkError`s the transport throws for unusable input, before anything is sent:
 * `invalid_base_url` (not an absolute http(s) URL), `invalid_path_segment` (an empty, `.` or `..`
 * path segment, which URL parsing would collapse into another endpoint), `invalid_refreshed_token`
 * (the app's refresh callback returned no token).
 */
export type HttpErrorCode = "invalid_base_url" | "invalid_path_segment" | "invalid_refreshed_token";
