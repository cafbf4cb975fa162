/**
 * The transport-neutral request and outcome the mock's core works on. The in-process `fetch` and
 * the `node:http` server both translate to and from these, so they share every behaviour.
 */
export interface MockHttpRequest {
  method: string;
  /** Path and query (`/_matrix/client/v3/sync?since=…`) or an absolute URL. */
  url: string;
  headers: Headers;
  /** `null` when the request had no body. */
  body: Uint8Array | null;
  /** Set by a transport that stopped reading because the body exceeded the limit. */
  bodyTooLarge?: boolean;
  remoteAddress?: string;
  /** Aborts when the client goes away (fetch signal, closed socket). */
  signal?: AbortSignal;
}

export type MockHttpOutcome =
  | { kind: "response"; status: number; headers: Record<string, string>; body: string | Uint8Array }
  /** The connection is cut without a response: fetch rejects, the socket is destroyed. */
  | { kind: "drop" };
