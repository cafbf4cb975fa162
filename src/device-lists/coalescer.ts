/**
 * One piece of work in flight per key: asking again while it runs joins it instead of starting
 * another. A finished flight is forgotten, so the next ask starts afresh (the rate limit, not this,
 * decides whether it may).
 */
export class Coalescer<K> {
  readonly #flights = new Map<K, Promise<void>>();

  /** The flight of `key`, if one runs. */
  inFlight(key: K): Promise<void> | undefined {
    return this.#flights.get(key);
  }

  get size(): number {
    return this.#flights.size;
  }

  /** Every flight running now, settled or not by the time the caller awaits them. */
  all(): Promise<void>[] {
    return [...this.#flights.values()];
  }

  /**
   * The flight of `key`: the one in flight (`joined: true`), else `start()`'s, kept until it
   * settles. `start` runs synchronously, so concurrent asks in one tick find the flight too.
   */
  run(key: K, start: () => Promise<void>): { flight: Promise<void>; joined: boolean } {
    const running = this.#flights.get(key);
    if (running !== undefined) return { flight: running, joined: true };
    const flight = start().finally(() => {
      if (this.#flights.get(key) === flight) this.#flights.delete(key);
    });
    this.#flights.set(key, flight);
    return { flight, joined: false };
  }
}
