/** What a detector checks its evidence against (a `Set` fits). */
export interface SeenEvidence {
  has(key: string): boolean;
}

/** Unknown-device claims remembered per user; see `EvidenceMemo`. */
export const MAX_CLAIMS_PER_USER = 256;

const UNSIGNED = "unsigned:";

interface UserEvidence {
  /** The unsigned-device keys last acted on: the whole unsigned set of one list, replaced as a whole. */
  unsigned: Set<string>;
  /** Unknown-device claims acted on (`device:…`, `key:…`), oldest first. */
  claims: Set<string>;
}

/**
 * The evidence already acted on, per user, so a detector fires once per piece of evidence (see
 * `detectors.ts`). One entry per user, dropped with `forget` (a user who left every shared room).
 *
 * Unsigned devices are remembered exactly, however many: the detector names the user's whole
 * unsigned set each time it fires, and that set replaces the one before, so what is kept never
 * outgrows the user's device list. Unknown-device claims come from messages, which anyone in a
 * room can make up by the thousand: the newest `MAX_CLAIMS_PER_USER` are kept, and a claim seen
 * again only after that many newer ones can trigger one more resync, within the rate limit.
 */
export class EvidenceMemo {
  readonly #users = new Map<string, UserEvidence>();

  /** The keys recorded for `userId` (none for a user never seen). */
  seen(userId: string): SeenEvidence {
    const entry = this.#users.get(userId);
    if (entry === undefined) return { has: () => false };
    return { has: (key) => (key.startsWith(UNSIGNED) ? entry.unsigned : entry.claims).has(key) };
  }

  /** Remembers `keys` as acted on for `userId`. Unsigned-device keys replace the unsigned set. */
  record(userId: string, keys: readonly string[]): void {
    if (keys.length === 0) return;
    let entry = this.#users.get(userId);
    if (entry === undefined) {
      entry = { unsigned: new Set(), claims: new Set() };
      this.#users.set(userId, entry);
    }
    const unsigned = keys.filter((k) => k.startsWith(UNSIGNED));
    if (unsigned.length > 0) entry.unsigned = new Set(unsigned);
    for (const key of keys) {
      if (key.startsWith(UNSIGNED)) continue;
      entry.claims.delete(key);
      entry.claims.add(key);
    }
    while (entry.claims.size > MAX_CLAIMS_PER_USER) {
      entry.claims.delete(entry.claims.values().next().value as string);
    }
  }

  /** Drops everything remembered of `userId`. */
  forget(userId: string): void {
    this.#users.delete(userId);
  }

  /** How many users have an entry. */
  get size(): number {
    return this.#users.size;
  }
}
