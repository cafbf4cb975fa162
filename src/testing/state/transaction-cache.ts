import type { Clock } from "../../time/clock.js";

/**
 * Transaction ids a device has used, each remembered for a fixed time on the server's clock and
 * then forgotten, so a long run keeps only the recent ones (Client-Server spec, "Transaction
 * identifiers": the server need only recognise a retry). Entries sit in one `Map` in the order they
 * were recorded; every one lives equally long, so the oldest are always at the front and expiring
 * touches only what has expired.
 */

/**
 * Synapse's `HttpTransactionCache` (synapse/rest/client/transactions.py) keeps a request's answer
 * for `CLEANUP_PERIOD`, 30 minutes, keyed by path, user and device (MSC3970). It is what makes
 * `sendToDevice` idempotent.
 */
export const HTTP_TRANSACTION_TTL_MS = 30 * 60 * 1000;

/**
 * Room sends outlive the HTTP cache: `event_txn_id_device_id` maps (room, user, device, txn id) to
 * the event and `_cleanup_old_transaction_ids` deletes rows older than 24 hours
 * (synapse/storage/databases/main/events_worker.py), so a retry within a day gets the same event.
 */
export const ROOM_EVENT_TRANSACTION_TTL_MS = 24 * 60 * 60 * 1000;

interface Entry<V> {
  value: V;
  recordedAt: number;
}

export class TransactionCache<V> {
  readonly #clock: Clock;
  readonly #ttlMs: number;
  /** `userId \0 deviceId \0 key` → entry, oldest first. */
  readonly #entries = new Map<string, Entry<V>>();

  constructor(clock: Clock, ttlMs: number) {
    this.#clock = clock;
    this.#ttlMs = ttlMs;
  }

  /** How many transactions are remembered now (expired ones are dropped first). */
  get size(): number {
    this.#expire();
    return this.#entries.size;
  }

  /** What the device recorded under `key`, while it is remembered. */
  get(userId: string, deviceId: string, key: string): V | undefined {
    this.#expire();
    return this.#entries.get(entryKey(userId, deviceId, key))?.value;
  }

  has(userId: string, deviceId: string, key: string): boolean {
    return this.get(userId, deviceId, key) !== undefined;
  }

  /** Remembers a transaction from now on; recording it again restarts its time. */
  record(userId: string, deviceId: string, key: string, value: V): void {
    this.#expire();
    const k = entryKey(userId, deviceId, key);
    // Deleting first moves a re-recorded id to the back, keeping the map in time order.
    this.#entries.delete(k);
    this.#entries.set(k, { value, recordedAt: this.#clock.now() });
  }

  /**
   * Synapse forgets an entry at the first cleanup after `recordedAt + ttl` (every 30 minutes for
   * the HTTP cache, every 5 for the room table); the mock forgets it as soon as that time has
   * passed, so a retry exactly `ttl` later still counts as one.
   */
  #expire(): void {
    const cutoff = this.#clock.now() - this.#ttlMs;
    for (const [k, entry] of this.#entries) {
      if (entry.recordedAt >= cutoff) break;
      this.#entries.delete(k);
    }
  }
}

function entryKey(userId: string, deviceId: string, key: string): string {
  return `${userId}\u0000${deviceId}\u0000${key}`;
}
