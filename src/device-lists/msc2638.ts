import { isMatrixApiError } from "../errors/matrix-api-error.js";
import { matrixPath } from "../http/path.js";
import { emptyResponseSchema } from "../http/schemas/empty.js";
import type { ServerVersions } from "../http/schemas/versions.js";
import type { MatrixHttp } from "../http/types.js";
import type { Clock } from "../time/clock.js";
import { MAX_REFRESH_RETRY_AFTER_MS } from "./options.js";

/** The `unstable_features` flag a server advertises MSC2638 with. */
export const MSC2638_FEATURE = "org.matrix.msc2638";

/**
 * Where the refresh is asked for, in order: the MSC's `POST /user/{userId}/devices/refresh`
 * under today's prefix, then the same under the MSC's unstable prefix. (The MSC's own unstable
 * section names `GET /_matrix/unstable/org.matrix.msc2638/user/{userId}/devices` instead, which
 * no server serves either; PROTOCOL.md "MSC2638".)
 */
export const REFRESH_PATHS: readonly ((userId: string) => string)[] = [
  (userId) => matrixPath`/_matrix/client/v3/user/${userId}/devices/refresh`,
  (userId) => matrixPath`/_matrix/client/unstable/org.matrix.msc2638/user/${userId}/devices/refresh`,
];

/** How the server answered one refresh. */
export type RefreshAnswer =
  /** 202: the server fetches the list over federation and announces it in `device_lists.changed`. */
  | { kind: "accepted" }
  /** The server does not implement MSC2638 (not advertised, or no path there: 404/405 on every one). */
  | { kind: "unsupported" }
  /** 429 `M_LIMIT_EXCEEDED`, with the server's `retry_after_ms` when it sent one. */
  | { kind: "rate_limited"; retryAfterMs: number | undefined; error: unknown }
  /** Anything else: a network failure, a 5xx, a 400 for the user id. */
  | { kind: "failed"; error: unknown };

/** The wait after a 429 that named none. */
export const DEFAULT_REFRESH_RETRY_AFTER_MS = 1_000;

/**
 * What an error answer means for the call, decided by the status code, never by the errcode
 * alone. A server that does not know a path answers 404 `M_UNRECOGNIZED`, and 405 — with that
 * errcode or another — when it knows the path for another method (Synapse `http/server.py`,
 * tuwunel `src/router/router.rs`); a proxy answers a bare 404 or 405: each says this path is not
 * there. Only a 404 `M_NOT_FOUND` comes from a path that is there (the server does not know the
 * user): that refresh failed.
 */
export function classifyRefreshError(error: unknown): "unrecognized" | "rate_limited" | "failed" {
  if (!isMatrixApiError(error)) return "failed";
  if (error.status === 429) return "rate_limited";
  if (error.status === 405) return "unrecognized";
  if (error.status === 404 && error.errcode !== "M_NOT_FOUND") return "unrecognized";
  return "failed";
}

/** Whether `/versions` advertises MSC2638: exactly `true` counts (`ServerVersions` does that). */
export function advertisesMsc2638(versions: Pick<ServerVersions, "unstableFeatures">): boolean {
  return versions.unstableFeatures[MSC2638_FEATURE] === true;
}

export interface Msc2638Parts {
  http: MatrixHttp & { getVersions(options?: { signal?: AbortSignal }): Promise<ServerVersions> };
  clock: Clock;
  signal: AbortSignal;
}

/**
 * MSC2638 for this session: feature-detected from `/versions`, and given up for the session the
 * first time no path is there (404/405 on every one; no server implements the MSC today).
 * Until one path was accepted, calls go one at a time, so a server that knows only the second
 * path costs one extra request in all rather than one per user. A 429 holds every refresh until
 * its `retry_after_ms` (at most `MAX_REFRESH_RETRY_AFTER_MS`) is over, and calls go one at a time
 * again until one is accepted: users waiting behind it do not each earn a 429 of their own.
 */
export class Msc2638Client {
  readonly #parts: Msc2638Parts;
  #supported: boolean | undefined;
  /** Index into `REFRESH_PATHS` of the first path not yet found missing. */
  #path = 0;
  /** A path was accepted: it is the one. */
  #confirmed = false;
  /** Calls may go at once: a path was accepted, and no 429 came since. */
  #parallel = false;
  /** No refresh is sent before this time on the clock (a 429's wait). */
  #pausedUntil = 0;
  /** The one call in flight while calls go one at a time; the others wait for it to settle. */
  #probe: Promise<unknown> | undefined;

  constructor(parts: Msc2638Parts) {
    this.#parts = parts;
  }

  /**
   * Whether to try MSC2638 at all. A failed `/versions` counts as "no" for now and is asked again
   * next time (the transport does not cache failures either).
   */
  async supported(): Promise<boolean> {
    if (this.#supported !== undefined) return this.#supported;
    try {
      const versions = await this.#parts.http.getVersions({ signal: this.#parts.signal });
      this.#supported ??= advertisesMsc2638(versions);
    } catch {
      return false;
    }
    return this.#supported;
  }

  /**
   * Asks the server to refresh its copy of `userId`'s device list, after any 429's wait is over.
   * Never rejects.
   */
  async refresh(userId: string): Promise<RefreshAnswer> {
    // While calls go one at a time, one call is the probe and the rest wait for it; once it is
    // accepted they all go at once (not one after another: a thousand refreshes at 50 ms each
    // would take 50 s), and after a 429 or a missing path the next waiter probes again.
    while (!this.#parallel && this.#probe !== undefined) await this.#probe;
    if (this.#parallel) return this.#ask(userId);
    const answer = this.#ask(userId);
    const probe = answer.finally(() => {
      if (this.#probe === probe) this.#probe = undefined;
    });
    this.#probe = probe;
    return answer;
  }

  async #ask(userId: string): Promise<RefreshAnswer> {
    for (;;) {
      if (this.#supported === false) return { kind: "unsupported" };
      const path = REFRESH_PATHS[this.#path];
      if (path === undefined) {
        this.#supported = false;
        return { kind: "unsupported" };
      }
      const waitMs = this.#pausedUntil - this.#parts.clock.now();
      if (waitMs > 0) {
        try {
          await this.#parts.clock.sleep(waitMs, this.#parts.signal);
        } catch (error) {
          return { kind: "failed", error };
        }
        continue;
      }
      try {
        await this.#parts.http.request({
          method: "POST",
          path: path(userId),
          body: {},
          schema: emptyResponseSchema,
          // Not repeated by the transport: a 429 is waited out here, and the caller decides
          // whether asking again is still worth it.
          retry: "never",
          signal: this.#parts.signal,
        });
        this.#confirmed = true;
        this.#parallel = true;
        return { kind: "accepted" };
      } catch (error) {
        const kind = classifyRefreshError(error);
        if (kind === "unrecognized") {
          if (this.#confirmed) return { kind: "failed", error };
          this.#path++;
          continue;
        }
        if (kind === "rate_limited") {
          const retryAfterMs = isMatrixApiError(error) ? error.retryAfterMs : undefined;
          // MSC2638 sets no limit, but a server that does has said when to come back.
          const wait = Math.min(retryAfterMs ?? DEFAULT_REFRESH_RETRY_AFTER_MS, MAX_REFRESH_RETRY_AFTER_MS);
          this.#pausedUntil = Math.max(this.#pausedUntil, this.#parts.clock.now() + wait);
          this.#parallel = false;
          return { kind: "rate_limited", retryAfterMs, error };
        }
        return { kind: "failed", error };
      }
    }
  }
}
