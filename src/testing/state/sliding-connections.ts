import type { Clock } from "../../time/clock.js";

/**
 * Simplified sliding sync connections (MSC4186) and the positions handed out on them, modelled on
 * Synapse's `SlidingSyncConnectionStore` and its `sliding_sync_connection_positions` table:
 *
 * - a connection is identified by (user, device, `conn_id`); a request without `pos` restarts it,
 *   which forgets every position handed out on it before;
 * - a `pos` is valid only on the connection that issued it — another user's, device's or
 *   `conn_id`'s position is unknown, as is one that expired or was forgotten;
 * - using a position forgets the connection's other positions (the client has evidently received
 *   it), so a retried request with the same `pos` still works while an older one does not;
 * - a connection idle for longer than `idleExpiryMs` (Synapse: 7 days) is dropped.
 *
 * Each position carries the per-connection state `S` the response it ended was computed against,
 * so a retried request yields the same deltas. Position ids are unique across the server.
 */

export interface SlidingConnectionKey {
  userId: string;
  deviceId: string;
  /** `conn_id` from the request body; Synapse treats a missing one as `""`. */
  connId: string;
}

/** Which connections `expire` drops: a user's, narrowed by device and/or `conn_id` when given. */
export interface SlidingConnectionMatch {
  userId: string;
  deviceId?: string;
  connId?: string;
}

export interface SlidingConnectionInfo extends SlidingConnectionKey {
  /** Position ids still valid on the connection, oldest first. */
  positions: number[];
  lastUsedAt: number;
}

/** Synapse `CONNECTION_EXPIRY` (synapse/storage/databases/main/sliding_sync.py). */
export const SLIDING_CONNECTION_IDLE_EXPIRY_MS = 7 * 24 * 60 * 60 * 1000;

interface Connection<S> extends SlidingConnectionKey {
  positions: Map<number, S>;
  lastUsedAt: number;
}

export class SlidingConnectionStore<S> {
  readonly #clock: Clock;
  readonly #idleExpiryMs: number;
  readonly #connections = new Map<string, Connection<S>>();
  #nextPosition = 1;

  constructor(clock: Clock, idleExpiryMs = SLIDING_CONNECTION_IDLE_EXPIRY_MS) {
    this.#clock = clock;
    this.#idleExpiryMs = idleExpiryMs;
  }

  /**
   * The state stored with `position` on the connection `key`, or `undefined` when that position is
   * unknown there (never issued, issued elsewhere, superseded, or expired) — the route answers
   * `M_UNKNOWN_POS`. A hit marks the connection used and forgets its other positions.
   */
  resume(key: SlidingConnectionKey, position: number): S | undefined {
    const connection = this.#live(key);
    const state = connection?.positions.get(position);
    if (!connection || state === undefined) return undefined;
    connection.lastUsedAt = this.#clock.now();
    for (const other of [...connection.positions.keys()]) {
      if (other !== position) connection.positions.delete(other);
    }
    return state;
  }

  /**
   * Stores the state a response ends at and returns its new position id. `from` is the position
   * the request resumed (`undefined` for a request without `pos`, which restarts the connection).
   * Returns `undefined` when `from` is no longer valid — the connection was expired while the
   * request waited — so the route answers `M_UNKNOWN_POS` rather than resurrect it.
   */
  record(key: SlidingConnectionKey, from: number | undefined, state: S): number | undefined {
    const now = this.#clock.now();
    let connection: Connection<S> | undefined;
    if (from === undefined) {
      connection = { ...key, positions: new Map(), lastUsedAt: now };
      this.#connections.set(connectionId(key), connection);
    } else {
      connection = this.#live(key);
      if (!connection?.positions.has(from)) return undefined;
      connection.lastUsedAt = now;
    }
    const position = this.#nextPosition++;
    connection.positions.set(position, state);
    return position;
  }

  /**
   * Forgets the user's connections — only those of `deviceId` and/or with `connId` when given —
   * and every position on them, so their next request with a `pos` gets `M_UNKNOWN_POS`. Returns
   * how many were dropped.
   */
  expire(match: SlidingConnectionMatch): number {
    let dropped = 0;
    for (const [id, connection] of [...this.#connections]) {
      if (connection.userId !== match.userId) continue;
      if (match.deviceId !== undefined && connection.deviceId !== match.deviceId) continue;
      if (match.connId !== undefined && connection.connId !== match.connId) continue;
      this.#connections.delete(id);
      dropped++;
    }
    return dropped;
  }

  /** The live connections of a user (all users when omitted), for the control API and tests. */
  connections(userId?: string): SlidingConnectionInfo[] {
    const result: SlidingConnectionInfo[] = [];
    for (const connection of [...this.#connections.values()]) {
      if (userId !== undefined && connection.userId !== userId) continue;
      if (!this.#live(connection)) continue;
      result.push({
        userId: connection.userId,
        deviceId: connection.deviceId,
        connId: connection.connId,
        positions: [...connection.positions.keys()],
        lastUsedAt: connection.lastUsedAt,
      });
    }
    return result;
  }

  /** The connection, unless it idled past the expiry — then it is dropped, as Synapse's reaper does. */
  #live(key: SlidingConnectionKey): Connection<S> | undefined {
    const id = connectionId(key);
    const connection = this.#connections.get(id);
    if (!connection) return undefined;
    if (this.#clock.now() - connection.lastUsedAt > this.#idleExpiryMs) {
      this.#connections.delete(id);
      return undefined;
    }
    return connection;
  }
}

function connectionId(key: SlidingConnectionKey): string {
  return `${key.userId}\u0000${key.deviceId}\u0000${key.connId}`;
}
