import ky from "ky";
import type { z } from "zod";
import { isMatrixApiError, type MatrixApiError } from "../errors/matrix-api-error.js";
import { SdkError } from "../errors/sdk-error.js";
import { TypedEmitter } from "../events/emitter.js";
import { type Logger, silentLogger } from "../logger.js";
import { type Clock, systemClock } from "../time/clock.js";
import { systemRandom } from "../time/random.js";
import { raceAbort } from "./abortable.js";
import { runWithRetry } from "./retry-loop.js";
import { defaultRetryConfig, type OutcomeClass, type RetryConfig } from "./retry-policy.js";
import { type ServerVersions, versionsResponseSchema } from "./schemas/versions.js";
import { sendAttempt } from "./send-attempt.js";
import { SingleFlight } from "./single-flight.js";
import type { HttpErrorCode, MatrixHttp, MatrixRequest } from "./types.js";

/** The fetch shape the transport needs; `globalThis.fetch` fits, and so does a test double. */
export type FetchLike = (input: Request, init?: RequestInit) => Promise<Response>;

/**
 * Called on a soft logout (401 `M_UNKNOWN_TOKEN` with `soft_logout: true`, spec "Soft logout") to
 * obtain a new access token, e.g. via `POST /refresh`. Reject when no new token can be had.
 */
export type RefreshTokenCallback = () => Promise<string>;

/** How the transport reaches the homeserver and how it retries. */
export interface MatrixHttpOptions {
  /** Homeserver base URL, e.g. `https://matrix.example.org` (a path prefix is kept). */
  baseUrl: string;
  accessToken?: string | undefined;
  /** Defaults to `globalThis.fetch` (looked up at call time). */
  fetch?: FetchLike | undefined;
  clock?: Clock | undefined;
  /** Uniform in [0, 1); drives backoff jitter. */
  random?: (() => number) | undefined;
  logger?: Logger | undefined;
  retry?: Partial<RetryConfig> | undefined;
  /** Per-attempt timeout when the request names none. */
  defaultTimeoutMs?: number | undefined;
  /** Added to a request's long-poll `timeout` query parameter to get its minimum attempt timeout. */
  longPollMarginMs?: number | undefined;
  refreshToken?: RefreshTokenCallback | undefined;
}

interface RequestRef {
  method: string;
  path: string;
}

/** What the transport reports: retries and the fate of the access token. Never the token. */
export interface MatrixHttpEvents {
  /** A request failed and will be sent again after `delayMs`. */
  requestRetried: RequestRef & {
    attempt: number;
    delayMs: number;
    outcome: OutcomeClass;
    status: number | undefined;
    errcode: string | undefined;
  };
  /** The server invalidated the token but kept the session (`soft_logout: true`). Once per token. */
  softLogout: RequestRef;
  /** The server invalidated the token and the session. Once per token. */
  loggedOut: RequestRef;
  /** The refresh callback produced a new token; requests continue with it. */
  tokenRefreshed: RequestRef;
  /** The refresh callback failed; the request that needed it fails with the original 401. */
  tokenRefreshFailed: RequestRef & { error: unknown };
}

/** The transport: `MatrixHttp` plus the token, the versions probe and the events. */
export interface MatrixHttpClient extends MatrixHttp {
  readonly baseUrl: string;
  readonly events: TypedEmitter<MatrixHttpEvents>;
  /** Replaces the access token, e.g. after a login or an app-driven refresh. */
  setAccessToken(token: string | undefined): void;
  hasAccessToken(): boolean;
  /**
   * `GET /_matrix/client/versions`, fetched once and cached for the client's life; concurrent
   * callers share one request; a failure is not cached.
   */
  getVersions(options?: { signal?: AbortSignal }): Promise<ServerVersions>;
}

const defaultTimeoutMs = 60_000;
const defaultLongPollMarginMs = 15_000;

/**
 * Creates the transport every feature talks through: one ky instance over the injected `fetch`,
 * with our own retry loop on the injected clock, zod validation of every 2xx body, typed errors
 * that never carry the token, and soft-logout recovery through `refreshToken`.
 */
export function createMatrixHttp(options: MatrixHttpOptions): MatrixHttpClient {
  return new MatrixHttpTransport(options);
}

class MatrixHttpTransport implements MatrixHttpClient {
  readonly baseUrl: string;
  readonly events: TypedEmitter<MatrixHttpEvents>;
  readonly #ky: ReturnType<typeof ky.create>;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #logger: Logger;
  readonly #retry: RetryConfig;
  readonly #timeoutMs: number;
  readonly #longPollMarginMs: number;
  readonly #refreshToken: RefreshTokenCallback | undefined;
  #accessToken: string | undefined;
  /** Bumped on every token change; logout events and refreshes are per generation. */
  #generation = 0;
  #reportedGeneration = -1;
  #refresh: { generation: number; promise: Promise<string> } | undefined;
  #versions: ServerVersions | undefined;
  readonly #versionsFlight = new SingleFlight<ServerVersions>();

  constructor(options: MatrixHttpOptions) {
    this.baseUrl = normaliseBaseUrl(options.baseUrl);
    this.#accessToken = options.accessToken;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? systemRandom;
    this.#logger = options.logger ?? silentLogger;
    this.#retry = { ...defaultRetryConfig, ...options.retry };
    this.#timeoutMs = options.defaultTimeoutMs ?? defaultTimeoutMs;
    this.#longPollMarginMs = options.longPollMarginMs ?? defaultLongPollMarginMs;
    this.#refreshToken = options.refreshToken;
    this.events = new TypedEmitter<MatrixHttpEvents>(this.#logger);
    const fetchImpl: FetchLike = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    // One instance for the client's life. Retries, timeouts and HTTP-status handling are ours
    // (on the injected clock), so ky's own are switched off.
    this.#ky = ky.create({
      // ky hands fetch a Request; the conversion only satisfies its wider signature.
      fetch: (input, init) => fetchImpl(input instanceof Request ? input : new Request(input), init),
      retry: 0,
      throwHttpErrors: false,
      timeout: false,
    });
  }

  setAccessToken(token: string | undefined): void {
    this.#accessToken = token;
    this.#generation++;
  }

  hasAccessToken(): boolean {
    return this.#accessToken !== undefined;
  }

  async request<S extends z.ZodType>(req: MatrixRequest<S>): Promise<z.output<S>> {
    const generation = this.#generation;
    try {
      return await this.#send(req);
    } catch (err) {
      if (!isUnknownToken(err) || req.unauthenticated) throw err;
      const newToken = await this.#recoverFromUnknownToken(req, err, generation);
      // The server refused the old token before acting on the request, so one replay is safe
      // whatever the request's retry mode. Only one: a second refusal is final.
      try {
        return await this.#send(req, newToken);
      } catch (again) {
        if (isUnknownToken(again)) this.#reportUnknownToken(req, again);
        throw again;
      }
    }
  }

  getVersions(options: { signal?: AbortSignal } = {}): Promise<ServerVersions> {
    if (this.#versions) return Promise.resolve(this.#versions);
    const shared = this.#versionsFlight.run(async () => {
      const versions = await this.request({
        method: "GET",
        path: "/_matrix/client/versions",
        schema: versionsResponseSchema,
        // Sent with the token when there is one: servers may enable unstable features per user.
        unauthenticated: this.#accessToken === undefined,
      });
      this.#versions = versions;
      return versions;
    });
    return raceAbort(shared, options.signal);
  }

  async #send<S extends z.ZodType>(req: MatrixRequest<S>, token = this.#accessToken): Promise<z.output<S>> {
    const method = req.method;
    const path = req.path.split(/[?#]/)[0] ?? req.path;
    const accessToken = req.unauthenticated ? undefined : token;
    const context = {
      ky: this.#ky,
      url: this.baseUrl + (req.path.startsWith("/") ? req.path : `/${req.path}`),
      accessToken,
      nowMs: () => this.#clock.now(),
    };
    return runWithRetry((signal) => sendAttempt(req, context, signal), {
      clock: this.#clock,
      random: this.#random,
      config: this.#retry,
      mode: req.retry ?? (method === "GET" ? "safe" : "never"),
      timeoutMs: this.#attemptTimeout(req),
      signal: req.signal,
      method,
      path,
      onRetry: ({ attempt, delayMs, outcome, error }) => {
        const api = isMatrixApiError(error) ? error : undefined;
        this.#logger.warn(
          `${describeFailure(method, path, error)}; retrying in ${delayMs} ms (attempt ${attempt + 1} of ${this.#retry.maxAttempts})`,
        );
        this.events.emit("requestRetried", {
          method,
          path,
          attempt,
          delayMs,
          outcome,
          status: api?.status,
          errcode: api?.errcode,
        });
      },
    });
  }

  /** The attempt timeout must outlast the long-poll the request asks the server to hold. */
  #attemptTimeout(req: MatrixRequest): number {
    const longPoll = Number(req.query?.timeout);
    const floor = Number.isFinite(longPoll) && longPoll > 0 ? longPoll + this.#longPollMarginMs : 0;
    return Math.max(req.timeoutMs ?? this.#timeoutMs, floor);
  }

  /**
   * Spec "Soft logout": `soft_logout: true` means the session survives and a refreshed token
   * continues it; otherwise the device is gone. Returns the token to replay with, or throws the
   * original error.
   */
  async #recoverFromUnknownToken(
    req: MatrixRequest,
    err: MatrixApiError,
    generation: number,
  ): Promise<string | undefined> {
    // Another request already replaced the token this one was sent with: just use the new one.
    if (generation !== this.#generation) return this.#accessToken;
    const refreshToken = this.#refreshToken;
    if (!err.softLogout || !refreshToken) {
      this.#reportUnknownToken(req, err);
      throw err;
    }
    const ref = { method: req.method, path: err.path };
    let refresh = this.#refresh;
    if (!refresh || refresh.generation !== generation) {
      this.#reportOnce(() => {
        this.#logger.info(`${ref.method} ${ref.path}: soft logout; refreshing the access token`);
        this.events.emit("softLogout", ref);
      });
      const started = { generation, promise: this.#runRefresh(refreshToken, ref, generation) };
      // Forget the flight once it settles, so a failed refresh can be tried again later.
      started.promise.then(
        () => this.#forgetRefresh(started),
        () => this.#forgetRefresh(started),
      );
      this.#refresh = started;
      refresh = started;
    }
    try {
      return await raceAbort(refresh.promise, req.signal);
    } catch (refreshError) {
      if (req.signal?.aborted) throw refreshError;
      throw err;
    }
  }

  #forgetRefresh(flight: { generation: number; promise: Promise<string> }): void {
    if (this.#refresh === flight) this.#refresh = undefined;
  }

  async #runRefresh(callback: RefreshTokenCallback, ref: RequestRef, generation: number): Promise<string> {
    try {
      const token = await callback();
      if (typeof token !== "string" || token === "") {
        throw new SdkError<HttpErrorCode>(
          "invalid_refreshed_token",
          "The refresh callback did not return a token",
        );
      }
      // The app may have set a token itself meanwhile; its choice wins.
      if (this.#generation === generation) this.setAccessToken(token);
      this.events.emit("tokenRefreshed", ref);
      return this.#accessToken ?? token;
    } catch (error) {
      const name = error instanceof Error ? error.name : typeof error;
      this.#logger.error(`${ref.method} ${ref.path}: token refresh failed (${name})`);
      this.events.emit("tokenRefreshFailed", { ...ref, error });
      throw error;
    }
  }

  /** Emits `loggedOut` or `softLogout` for a token the server refused, once per token. */
  #reportUnknownToken(req: MatrixRequest, err: MatrixApiError): void {
    const ref = { method: req.method, path: err.path };
    this.#reportOnce(() => {
      if (err.softLogout) {
        this.#logger.warn(`${ref.method} ${ref.path}: soft logout; the token cannot be refreshed`);
        this.events.emit("softLogout", ref);
      } else {
        this.#logger.warn(`${ref.method} ${ref.path}: access token rejected (logged out)`);
        this.events.emit("loggedOut", ref);
      }
    });
  }

  /** Logout-type events fire once per token, not once per request that notices. */
  #reportOnce(report: () => void): void {
    if (this.#reportedGeneration === this.#generation) return;
    this.#reportedGeneration = this.#generation;
    report();
  }
}

function isUnknownToken(err: unknown): err is MatrixApiError {
  return isMatrixApiError(err) && err.status === 401 && err.errcode === "M_UNKNOWN_TOKEN";
}

/**
 * A failed attempt in one line that names the request once: the SDK's own request errors already
 * start with method and path ("GET /x failed with 503 …"), anything else gets them put in front.
 */
function describeFailure(method: string, path: string, error: Error): string {
  const request = `${method} ${path}`;
  return error.message.startsWith(`${request} `) ? error.message : `${request}: ${error.message}`;
}

function normaliseBaseUrl(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new SdkError<HttpErrorCode>("invalid_base_url", "baseUrl is not an absolute URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new SdkError<HttpErrorCode>("invalid_base_url", "baseUrl must use http or https");
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}
