/** A write of one user's account data; `/sync` long-polls wake on it. */
export interface AccountDataChange {
  userId: string;
  type: string;
  position: number;
}

export type AccountDataListener = (change: AccountDataChange) => void;

/** Global (not per-room) account data, per user then per type; secret storage lives here. */
export class AccountDataStore {
  readonly #byUser = new Map<string, Map<string, Record<string, unknown>>>();
  /** user → type → stream position of its last write, in write order (for `/sync` deltas). */
  readonly #positions = new Map<string, Map<string, number>>();
  readonly #listeners = new Set<AccountDataListener>();
  #position = 0;

  /** The stream position of the newest write (0 before any); a `/sync` token carries it. */
  get position(): number {
    return this.#position;
  }

  onChange(listener: AccountDataListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Types the user wrote after stream position `after`, each with its current content. Every write
   * comes back down `/sync`, rewrites of an unchanged value included: matrix-js-sdk waits for the echo.
   */
  changedSince(userId: string, after: number): { type: string; content: Record<string, unknown> }[] {
    const changed: { type: string; content: Record<string, unknown> }[] = [];
    for (const [type, position] of this.#positions.get(userId) ?? []) {
      if (position <= after) continue;
      const content = this.get(userId, type);
      if (content !== undefined) changed.push({ type, content: structuredClone(content) });
    }
    return changed;
  }

  get(userId: string, type: string): Record<string, unknown> | undefined {
    return this.#byUser.get(userId)?.get(type);
  }

  set(userId: string, type: string, content: Record<string, unknown>): void {
    let types = this.#byUser.get(userId);
    if (!types) {
      types = new Map();
      this.#byUser.set(userId, types);
    }
    types.set(type, structuredClone(content));
    const position = ++this.#position;
    let positions = this.#positions.get(userId);
    if (!positions) {
      positions = new Map();
      this.#positions.set(userId, positions);
    }
    // Re-inserting keeps the map in write order.
    positions.delete(type);
    positions.set(type, position);
    for (const listener of [...this.#listeners]) {
      try {
        listener({ userId, type, position });
      } catch {
        // A closed long-poll must not break the write.
      }
    }
  }

  /** Every type for one user (the sync handlers of a later issue read this). */
  all(userId: string): ReadonlyMap<string, Record<string, unknown>> {
    return this.#byUser.get(userId) ?? new Map();
  }
}
