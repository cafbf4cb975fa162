import type { OutgoingRequestKind } from "./request-endpoints.js";

/**
 * Events of the crypto layer. Background failures surface here instead of as rejected promises:
 * the outgoing-request loop keeps running and retries on its own.
 */
export interface CryptoEvents {
  /** A request from `outgoingRequests()` reached the server and was marked as sent. */
  requestSent: { requestId: string | undefined; kind: OutgoingRequestKind | "Unknown" };
  /**
   * A request failed (transport error, malformed response, or the machine rejecting the response).
   * The machine keeps the request pending, so the next pass sends it again — except `keys/claim`,
   * whose retry is a fresh claim the machine decides on itself.
   */
  requestFailed: { requestId: string | undefined; kind: OutgoingRequestKind | "Unknown"; error: unknown };
  /**
   * A `keys/upload` reached the server: how many one-time and fallback keys it carried, and
   * whether it published the device keys. The machine tops one-time keys up whenever the server's
   * count is below its target, so a steady stream of these means a server count that never rises.
   */
  keysUploaded: { oneTimeKeys: number; fallbackKeys: number; deviceKeys: boolean };
  /**
   * A `keys/query` was answered and handed to the machine: whose keys it asked for, and the
   * servers its `failures` named. Synapse answers for a remote user from its cache and lists the
   * user's server there when it could not reach it (`handlers/e2e_keys.py` `query_devices`), so a
   * named server means those users' lists may be stale however often the client asks again.
   */
  keysQueried: { users: string[]; failedServers: string[] };
  /** `outgoingRequests()` itself threw; the loop retries later. */
  loopFailed: { error: unknown };
  /** A pass had failures; the loop runs again after `delayMs` on the injected clock. */
  retryScheduled: { delayMs: number; consecutiveFailures: number };
}
