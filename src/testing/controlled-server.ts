import type { Clock } from "../time/clock.js";
import type { MockHttpOutcome, MockHttpRequest } from "./http-exchange.js";
import type { Profile } from "./profiles.js";
import type { ServerState } from "./state/server-state.js";

/**
 * The server a `MockControl` drives: a `MockHomeserver` as seen from its control API, everything
 * but the `control` itself. Declared here, not taken from mock-homeserver.ts, because the server
 * builds its control and the control points back at its server: both import this instead of each
 * other.
 */
export interface ControlledServer {
  readonly serverName: string;
  readonly profile: Profile;
  readonly state: ServerState;
  readonly clock: Clock;
  baseUrl: string;
  /** A `fetch`-compatible function answering from the server without any network. */
  readonly fetch: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
  /** The transport-neutral core both ways in share. */
  handle(req: MockHttpRequest): Promise<MockHttpOutcome>;
}
