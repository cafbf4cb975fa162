import type { ErrorInfo } from "../errors/error-info.js";

/** The wait after a server's first failure and the longest wait (15 s doubling to 15 min). */
export interface BackoffConfig {
  baseMs: number;
  capMs: number;
}

export const DEFAULT_SERVER_BACKOFF: Readonly<BackoffConfig> = { baseMs: 15_000, capMs: 15 * 60_000 };

/** Where one server stands: failures in a row, when it may be asked again, and the last error. */
export interface ServerFailure {
  server: string;
  failures: number;
  nextRetryAt: number;
  error: ErrorInfo;
}

/**
 * A failure backoff per server, not per user: one unreachable server fails every one of its
 * users at once, and asking for each would hammer it (and our homeserver, which makes the
 * federation request) once per user. The default schedule is crypto-wasm's own: rust-sdk keeps
 * servers named in `keys/query` `failures` in a `FailuresCache` (15 s · 2^n, at most 15 min, on
 * the wall clock) and leaves their users out of every query until it expires
 * (`identities/manager.rs` `users_for_key_query`), so asking sooner would send nothing anyway.
 * The wait doubles with each failure in a row, up to the cap;
 * a failure reported while the server is already waiting (many users of one answer, a query the
 * crypto layer sent on its own) does not double it again. A server that said how long to wait
 * (429 `retry_after_ms`) is not asked sooner than that, within the cap. Times are the clock's.
 */
export class ServerBackoff {
  readonly #config: BackoffConfig;
  readonly #servers = new Map<string, ServerFailure>();

  constructor(config: BackoffConfig = DEFAULT_SERVER_BACKOFF) {
    this.#config = config;
  }

  /**
   * Records a failure at `now`; returns where the server stands. `retryAfterMs` is how long the
   * server asked us to wait (a 429's `retry_after_ms`): a longer wait than the backoff's is
   * honoured, up to the cap, even while the server already waits.
   */
  failure(server: string, now: number, error: ErrorInfo, retryAfterMs?: number): ServerFailure {
    const asked =
      now + Math.min(retryAfterMs !== undefined && retryAfterMs > 0 ? retryAfterMs : 0, this.#config.capMs);
    const current = this.#servers.get(server);
    if (current !== undefined && now < current.nextRetryAt) {
      if (asked <= current.nextRetryAt) return current;
      const extended: ServerFailure = { ...current, nextRetryAt: asked, error };
      this.#servers.set(server, extended);
      return extended;
    }
    const failures = (current?.failures ?? 0) + 1;
    const nextRetryAt = Math.max(now + this.delayMs(failures), asked);
    const next: ServerFailure = { server, failures, nextRetryAt, error };
    this.#servers.set(server, next);
    return next;
  }

  /** The server answered: the next failure starts from the base again. */
  success(server: string): void {
    this.#servers.delete(server);
  }

  /** The server's failure while it waits; `undefined` once it may be asked again (or never failed). */
  blocked(server: string, now: number): ServerFailure | undefined {
    const current = this.#servers.get(server);
    return current !== undefined && now < current.nextRetryAt ? current : undefined;
  }

  /** The server's last failure, even once its wait is over; `undefined` after a success. */
  lastFailure(server: string): ServerFailure | undefined {
    return this.#servers.get(server);
  }

  /** The wait after `failures` failures in a row: base · 2^(n−1), capped. */
  delayMs(failures: number): number {
    const { baseMs, capMs } = this.#config;
    return Math.min(capMs, baseMs * 2 ** Math.min(Math.max(failures, 1) - 1, 52));
  }
}
