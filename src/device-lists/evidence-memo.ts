/**
 * The evidence already acted on, per user, so a detector fires once per piece of evidence (see
 * `detectors.ts`). Bounded: at most `perUser` keys per user, the oldest forgotten first — a
 * forgotten key can trigger one more resync, never a storm (the rate limit still holds).
 */
export class EvidenceMemo {
  readonly #perUser: number;
  readonly #seen = new Map<string, Set<string>>();

  constructor(perUser = 64) {
    this.#perUser = perUser;
  }

  /** The keys recorded for `userId` (an empty set for a user never seen). */
  seen(userId: string): ReadonlySet<string> {
    return this.#seen.get(userId) ?? new Set();
  }

  /** Remembers `keys` as acted on for `userId`. */
  record(userId: string, keys: readonly string[]): void {
    if (keys.length === 0) return;
    let set = this.#seen.get(userId);
    if (set === undefined) {
      set = new Set();
      this.#seen.set(userId, set);
    }
    for (const key of keys) {
      set.delete(key);
      set.add(key);
    }
    while (set.size > this.#perUser) set.delete(set.values().next().value as string);
  }
}
