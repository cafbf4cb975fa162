/**
 * A client-side limit per user: while a user's resync runs, and for `intervalMs` after it
 * ended, no other starts (the window is measured from the end, so a resync that took longer than
 * the window does not leave the next ask free to go out at once). MSC2638 defines no limit of its own (its reviewer asked for one), and a server
 * rate-limits the refresh per caller anyway; limiting here keeps a chatty detector or an app
 * asking in a loop from costing more than one request per user and window. Times are the clock's.
 */
export class ResyncRateLimit {
  readonly #intervalMs: number;
  readonly #startedAt = new Map<string, number>();

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  /** Until when `userId` may not be resynced again, or `undefined` when it may now. */
  blockedUntil(userId: string, now: number): number | undefined {
    const started = this.#startedAt.get(userId);
    if (started === undefined) return undefined;
    const until = started + this.#intervalMs;
    return now < until ? until : undefined;
  }

  /** A resync of `userId` starts, or ends, at `now`: the window runs from the latest of these. */
  record(userId: string, now: number): void {
    // Re-inserted, so the map stays ordered by start time and expired entries sit at its front.
    this.#startedAt.delete(userId);
    this.#startedAt.set(userId, now);
    for (const [user, started] of this.#startedAt) {
      if (started + this.#intervalMs > now) break;
      this.#startedAt.delete(user);
    }
  }
}
