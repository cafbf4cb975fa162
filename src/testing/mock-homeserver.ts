import { type Clock, systemClock } from "../time/clock.js";
import { MockControl } from "./control.js";
import { checkControlToken, controlTokenError } from "./control-auth.js";
import type { ControlledServer } from "./controlled-server.js";
import { corsHeaders, preflightHeaders } from "./cors.js";
import { type FaultAction, FaultInjector, faultKindOf } from "./faults.js";
import type { MockHttpOutcome, MockHttpRequest } from "./http-exchange.js";
import { loggedBody, presentedTokens } from "./log-redaction.js";
import {
  defaultProfileName,
  type Profile,
  type ProfileName,
  type ProfileOverrides,
  resolveProfile,
} from "./profiles.js";
import { RequestLog, type RequestLogEntry, redactQuery } from "./request-log.js";
import { type Caller, MatrixError, type MockResponse, type Route, type RouteContext } from "./route.js";
import { Router } from "./router.js";
import { controlRoutes } from "./routes/control.js";
import { clientRoutes } from "./routes/index.js";
import { authenticateAccessToken } from "./session-tokens.js";
import type { FederationOptions } from "./state/remote-device-lists.js";
import { createServerState, type ServerState } from "./state/server-state.js";
import { UiaRequiredError } from "./uia.js";

export type ClientRoute = Route<ServerState, Profile>;
export type ControlRoute = Route<MockControl, Profile>;

export interface MockHomeserverOptions {
  /** The server name in user ids (`@alice:localhost`). Default `localhost`. */
  serverName?: string;
  /** Default `synapse-1.157`. */
  profile?: ProfileName;
  /** Single profile flags to replace, e.g. `{ emptyAccountDataIsDeleted: true }`. */
  overrides?: ProfileOverrides;
  /** Drives added latency and every timestamp. Default: the system clock. */
  clock?: Clock;
  /** Initial seed of the fault PRNG. */
  seed?: number;
  /** Base for relative URLs given to `fetch`. Default `http://<serverName>`. */
  baseUrl?: string;
  /** How many request-log entries are kept (oldest dropped first). Default 10,000. */
  requestLogCapacity?: number;
  /** Routes added after the built-in ones (later features, tests). */
  extraRoutes?: readonly ClientRoute[];
  /** Routes added under `/_mock/` after the built-in control routes. */
  extraControlRoutes?: readonly ControlRoute[];
  /**
   * When set, `/_mock/…` requests (over HTTP, and through `fetch`) need `Authorization: Bearer
   * <controlToken>`: 401 `M_MISSING_TOKEN` without one, 403 `M_UNKNOWN_TOKEN` for another.
   * `control` calls never do. Default: none, the API is open (fine on loopback only).
   */
  controlToken?: string;
  /**
   * Simulated federation (docs/mock-homeserver.md, "Federation"): remote servers hosted from the
   * start, and the timings of MSC2638 refreshes and resync retries, on `clock`.
   */
  federation?: FederationOptions;
}

const JSON_HEADERS = {
  "Content-Type": "application/json",
  // Synapse marks every JSON response uncacheable.
  "Cache-Control": "no-cache, no-store, must-revalidate",
};

/**
 * A Matrix homeserver in memory. `fetch` serves it in-process (no sockets, works in browsers);
 * `startMockServer` (node-server.ts) puts the same core behind `node:http`.
 */
export class MockHomeserver implements ControlledServer {
  readonly serverName: string;
  readonly profile: Profile;
  readonly state: ServerState;
  readonly control: MockControl;
  readonly clock: Clock;
  baseUrl: string;
  /** The token `/_mock/…` requests must present, if any (`MockHomeserverOptions.controlToken`). */
  readonly controlToken: string | undefined;

  readonly #faults: FaultInjector;
  readonly #log: RequestLog;
  readonly #clientRouter: Router<ClientRoute>;
  readonly #controlRouter: Router<ControlRoute>;

  constructor(options: MockHomeserverOptions = {}) {
    this.serverName = options.serverName ?? "localhost";
    this.profile = resolveProfile(options.profile ?? defaultProfileName, options.overrides);
    this.clock = options.clock ?? systemClock;
    this.baseUrl = options.baseUrl ?? `http://${this.serverName}`;
    if (options.controlToken !== undefined) checkControlToken(options.controlToken);
    this.controlToken = options.controlToken;
    this.state = createServerState(this.serverName, this.clock, options.federation);
    this.state.remoteDeviceLists.mode = this.profile.remoteDeviceLists;
    this.#faults = new FaultInjector();
    if (options.seed !== undefined) this.#faults.configure({ seed: options.seed });
    this.#log = new RequestLog(options.requestLogCapacity);
    this.#clientRouter = new Router([...clientRoutes, ...(options.extraRoutes ?? [])]);
    this.#controlRouter = new Router([...controlRoutes, ...(options.extraControlRoutes ?? [])]);
    this.control = new MockControl(this, this.#faults, this.#log);
  }

  /**
   * Cancels the server's background work — waiting MSC2638 refreshes and resync retries, which
   * sleep on `clock` — and schedules none from then on, so none keeps a process alive. The server
   * still answers requests. `RunningMockServer.close()` calls it for a server it created.
   */
  dispose(): void {
    this.state.remoteDeviceLists.dispose();
  }

  /** A `fetch`-compatible function answering from this server without any network. */
  readonly fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request =
      typeof input === "string" || input instanceof URL
        ? new Request(new URL(input, this.baseUrl), init)
        : new Request(input, init);
    request.signal.throwIfAborted();
    const raw = request.body === null ? null : new Uint8Array(await request.arrayBuffer());
    const outcome = await this.handle({
      method: request.method,
      url: request.url,
      headers: request.headers,
      body: raw,
      signal: request.signal,
    });
    if (outcome.kind === "drop") {
      // What fetch does when the connection is cut: a TypeError, as undici and browsers throw.
      throw new TypeError("fetch failed", { cause: new Error("mock homeserver dropped the connection") });
    }
    const nullBody = outcome.status === 204 || outcome.status === 304 || outcome.body === "";
    // Bytes are copied into a plain ArrayBuffer, the body type every `Response` accepts.
    const body = typeof outcome.body === "string" ? outcome.body : outcome.body.slice().buffer;
    return new Response(nullBody ? null : body, { status: outcome.status, headers: outcome.headers });
  };

  /** The transport-neutral core both ways in share. Rejects only when `req.signal` aborts. */
  async handle(req: MockHttpRequest): Promise<MockHttpOutcome> {
    const method = req.method.toUpperCase();
    const url = new URL(req.url, "http://mock.invalid");
    const path = url.pathname;

    if (path === "/_mock" || path.startsWith("/_mock/")) {
      if (method === "OPTIONS") return this.#preflight();
      return this.#dispatchControl(method, path, url, req);
    }

    const entry = this.#log.start(
      method,
      path,
      redactQuery(url.searchParams),
      loggedBody(method, req.body, presentedTokens(req.headers, url.searchParams)),
      this.clock.now(),
    );
    const finish = (outcome: MockHttpOutcome, action?: FaultAction): MockHttpOutcome => {
      const status = outcome.kind === "response" ? outcome.status : null;
      const errcode = outcome.kind === "response" ? errcodeOf(outcome.status, outcome.body) : undefined;
      const fault = action && { source: action.source, kind: faultKindOf(action) };
      this.#log.end(entry, { status, errcode, dropped: outcome.kind === "drop", fault }, this.clock.now());
      return outcome;
    };

    // Preflights are answered by the HTTP layer in real servers, before any handler or fault.
    if (method === "OPTIONS") return finish(this.#preflight());

    try {
      const { latencyMs } = this.#faults.settings();
      if (latencyMs > 0) await this.clock.sleep(latencyMs, req.signal);

      // A random fault strikes before or after processing (lost response); scripted ones win over it.
      const random = this.#faults.drawRandom();
      const before =
        this.#faults.takeScripted(method, path, "before") ?? (random?.when === "before" ? random : undefined);
      if (before) return finish(this.#faultOutcome(before), before);

      const outcome = await this.#dispatchClient(method, path, url, req, entry);

      const after =
        this.#faults.takeScripted(method, path, "after") ?? (random?.when === "after" ? random : undefined);
      if (after) return finish(this.#faultOutcome(after), after);
      return finish(outcome);
    } catch (err) {
      // Only an aborted client reaches here; handler errors are turned into responses below.
      finish({ kind: "drop" });
      throw err;
    }
  }

  async #dispatchClient(
    method: string,
    path: string,
    url: URL,
    req: MockHttpRequest,
    entry: RequestLogEntry,
  ): Promise<MockHttpOutcome> {
    const profile = this.profile;
    const bodySize = req.body?.byteLength ?? 0;
    if (req.bodyTooLarge || bodySize > profile.maxRequestBodyBytes) {
      return this.#error(
        new MatrixError(413, "M_TOO_LARGE", `Request content is too large (>${profile.maxRequestBodyBytes})`),
      );
    }
    // Synapse treats HEAD as GET and sends no body.
    const isHead = method === "HEAD";
    const routeMethod = isHead ? "GET" : method;
    const resolution = this.#clientRouter.resolve(routeMethod, path);
    if (resolution.kind === "not-found") {
      return this.#error(new MatrixError(404, "M_UNRECOGNIZED", profile.unknownPathMessage));
    }
    if (resolution.kind === "wrong-method") {
      if (!profile.wrongMethodHasErrorBody) {
        return { kind: "response", status: 405, headers: corsHeaders(profile.cors), body: "" };
      }
      return this.#error(new MatrixError(405, "M_UNRECOGNIZED", "Unrecognized request"));
    }
    const { route, params } = resolution;

    let caller: Caller | undefined;
    const authenticate = (): Caller => {
      caller ??= this.#authenticate(req.headers, url.searchParams, route.allowExpiredToken === true);
      return caller;
    };

    const outcome = await this.#run(async () => {
      if (!route.unauthenticated) {
        const c = authenticate();
        entry.userId = c.userId;
        this.state.accounts.touch(c.userId, c.deviceId, this.clock.now(), req.remoteAddress ?? null);
      }
      const body = route.rawBody ? undefined : parseJsonBody(routeMethod, req.body);
      const ctx: RouteContext<ServerState, Profile> = {
        method: routeMethod,
        path,
        params,
        query: url.searchParams,
        headers: req.headers,
        body,
        rawBody: req.body,
        state: this.state,
        profile,
        caller: authenticate,
        signal: req.signal ?? new AbortController().signal,
      };
      return route.handler(ctx);
    }, entry);
    if (isHead && outcome.kind === "response") return { ...outcome, body: "" };
    return outcome;
  }

  async #dispatchControl(
    method: string,
    path: string,
    url: URL,
    req: MockHttpRequest,
  ): Promise<MockHttpOutcome> {
    // Before routing, so that without the token not even which paths exist can be learnt.
    if (this.controlToken !== undefined) {
      const refused = controlTokenError(req.headers, this.controlToken);
      if (refused) return this.#error(refused);
    }
    const resolution = this.#controlRouter.resolve(method, path);
    if (resolution.kind === "not-found") {
      return this.#error(new MatrixError(404, "M_UNRECOGNIZED", "Unrecognized request"));
    }
    if (resolution.kind === "wrong-method") {
      return this.#error(new MatrixError(405, "M_UNRECOGNIZED", "Unrecognized request"));
    }
    const { route, params } = resolution;
    return this.#run(async () =>
      route.handler({
        method,
        path,
        params,
        query: url.searchParams,
        headers: req.headers,
        body: parseJsonBody(method, req.body),
        state: this.control,
        profile: this.profile,
        caller: () => {
          throw new MatrixError(401, "M_MISSING_TOKEN", "Control routes have no caller");
        },
        signal: req.signal ?? new AbortController().signal,
      }),
    );
  }

  /** Runs a handler; a thrown Matrix error becomes its response, anything else a 500. */
  async #run(fn: () => Promise<MockResponse>, entry?: RequestLogEntry): Promise<MockHttpOutcome> {
    try {
      const res = await fn();
      return {
        kind: "response",
        status: res.status,
        headers: { ...JSON_HEADERS, ...corsHeaders(this.profile.cors), ...res.headers },
        body: res.bytes ?? JSON.stringify(res.body ?? {}),
      };
    } catch (err) {
      if (err instanceof MatrixError) return this.#error(err);
      if (err instanceof UiaRequiredError) {
        return {
          kind: "response",
          status: 401,
          headers: { ...JSON_HEADERS, ...corsHeaders(this.profile.cors) },
          body: JSON.stringify(err.body),
        };
      }
      if (entry) entry.internalError = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      return this.#error(new MatrixError(500, "M_UNKNOWN", "Internal server error"));
    }
  }

  #authenticate(headers: Headers, query: URLSearchParams, allowExpired: boolean): Caller {
    // Synapse `get_access_token_from_request`: a header or a query parameter, never both.
    const header = headers.get("authorization");
    const queryToken = query.get("access_token");
    let token: string;
    if (header !== null) {
      if (queryToken !== null) {
        throw new MatrixError(
          401,
          "M_MISSING_TOKEN",
          "Mixing Authorization headers and access_token query parameters.",
        );
      }
      const parts = header.split(" ");
      if (parts.length !== 2 || parts[0] !== "Bearer") {
        throw new MatrixError(401, "M_MISSING_TOKEN", "Invalid Authorization header.");
      }
      token = parts[1]!;
    } else if (queryToken !== null && queryToken !== "") {
      token = queryToken;
    } else {
      throw new MatrixError(401, "M_MISSING_TOKEN", "Missing access token");
    }
    return authenticateAccessToken(this.state, token, allowExpired);
  }

  #faultOutcome(action: FaultAction): MockHttpOutcome {
    if (action.kind === "drop") return { kind: "drop" };
    if (action.kind === "answer") {
      return {
        kind: "response",
        status: action.status,
        headers: { ...JSON_HEADERS, ...corsHeaders(this.profile.cors) },
        body: action.body,
      };
    }
    const extra = action.retryAfterMs !== undefined ? { retry_after_ms: action.retryAfterMs } : {};
    const headers: Record<string, string> = {};
    // Synapse `LimitExceededError` sends the header in whole seconds, rounded up.
    if (action.retryAfterMs !== undefined)
      headers["Retry-After"] = String(Math.ceil(action.retryAfterMs / 1000));
    return this.#error(new MatrixError(action.status, action.errcode, action.error, extra, headers));
  }

  #error(err: MatrixError): MockHttpOutcome {
    return {
      kind: "response",
      status: err.status,
      headers: { ...JSON_HEADERS, ...corsHeaders(this.profile.cors), ...err.headers },
      body: JSON.stringify({ errcode: err.errcode, error: err.error, ...err.extra }),
    };
  }

  #preflight(): MockHttpOutcome {
    return {
      kind: "response",
      status: this.profile.cors.preflightStatus,
      headers: preflightHeaders(this.profile.cors),
      body: "",
    };
  }
}

export function createMockHomeserver(options: MockHomeserverOptions = {}): MockHomeserver {
  return new MockHomeserver(options);
}

/** Bodies are parsed only for methods that carry one; a body that is not UTF-8 JSON → `M_NOT_JSON`. */
function parseJsonBody(method: string, body: Uint8Array | null): unknown {
  if (method === "GET" || body === null || body.byteLength === 0) return undefined;
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    throw new MatrixError(400, "M_NOT_JSON", "Content not JSON.");
  }
}

function errcodeOf(status: number, body: string | Uint8Array): string | undefined {
  if (status < 400 || typeof body !== "string" || !body.startsWith("{")) return undefined;
  try {
    const parsed = JSON.parse(body) as { errcode?: unknown };
    return typeof parsed.errcode === "string" ? parsed.errcode : undefined;
  } catch {
    return undefined;
  }
}
