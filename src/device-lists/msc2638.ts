import { isMatrixApiError } from "../errors/matrix-api-error.js";
import { matrixPath } from "../http/path.js";
import { emptyResponseSchema } from "../http/schemas/empty.js";
import type { ServerVersions } from "../http/schemas/versions.js";
import type { MatrixHttp } from "../http/types.js";

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
  /** The server does not implement MSC2638 (not advertised, or 404 `M_UNRECOGNIZED` on every path). */
  | { kind: "unsupported" }
  /** 429 `M_LIMIT_EXCEEDED`, with the server's `retry_after_ms` when it sent one. */
  | { kind: "rate_limited"; retryAfterMs: number | undefined; error: unknown }
  /** Anything else: a network failure, a 5xx, a 400 for the user id. */
  | { kind: "failed"; error: unknown };

/**
 * What an error answer means for the call. A server that does not know a path answers 404
 * `M_UNRECOGNIZED` (Synapse, tuwunel; 405 when it knows the path for another method); a plain
 * proxy 404 without a Matrix body says the same.
 */
export function classifyRefreshError(error: unknown): "unrecognized" | "rate_limited" | "failed" {
  if (!isMatrixApiError(error)) return "failed";
  if (error.status === 429) return "rate_limited";
  if (error.status === 404 && (error.errcode === "M_UNRECOGNIZED" || error.errcode === undefined)) {
    return "unrecognized";
  }
  if (error.status === 405 && error.errcode === "M_UNRECOGNIZED") return "unrecognized";
  return "failed";
}

/** Whether `/versions` advertises MSC2638: exactly `true` counts (`ServerVersions` does that). */
export function advertisesMsc2638(versions: Pick<ServerVersions, "unstableFeatures">): boolean {
  return versions.unstableFeatures[MSC2638_FEATURE] === true;
}

export interface Msc2638Parts {
  http: MatrixHttp & { getVersions(options?: { signal?: AbortSignal }): Promise<ServerVersions> };
  signal: AbortSignal;
}

/**
 * MSC2638 for this session: feature-detected from `/versions`, and given up for the session the
 * first time every path is answered `M_UNRECOGNIZED` (no server implements the MSC; PROTOCOL.md).
 * Until one path was accepted, calls go one at a time, so a server that knows only the second
 * path costs one extra request in all rather than one per user.
 */
export class Msc2638Client {
  readonly #parts: Msc2638Parts;
  #supported: boolean | undefined;
  /** Index into `REFRESH_PATHS` of the first path not yet answered `M_UNRECOGNIZED`. */
  #path = 0;
  #confirmed = false;
  #probe: Promise<unknown> = Promise.resolve();

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

  /** Asks the server to refresh its copy of `userId`'s device list. Never rejects. */
  refresh(userId: string): Promise<RefreshAnswer> {
    if (this.#confirmed) return this.#ask(userId);
    const answer = this.#probe.then(() => this.#ask(userId));
    this.#probe = answer;
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
      try {
        await this.#parts.http.request({
          method: "POST",
          path: path(userId),
          body: {},
          schema: emptyResponseSchema,
          // Not repeated by the transport: a 429 is waited out by the caller, who also decides
          // whether the wait is still worth it.
          retry: "never",
          signal: this.#parts.signal,
        });
        this.#confirmed = true;
        return { kind: "accepted" };
      } catch (error) {
        const kind = classifyRefreshError(error);
        if (kind === "unrecognized") {
          if (!this.#confirmed) this.#path++;
          else return { kind: "failed", error };
          continue;
        }
        if (kind === "rate_limited") {
          const retryAfterMs = isMatrixApiError(error) ? error.retryAfterMs : undefined;
          return { kind: "rate_limited", retryAfterMs, error };
        }
        return { kind: "failed", error };
      }
    }
  }
}
