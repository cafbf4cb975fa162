import type { DeviceListPosition } from "./device-list-delta.js";

/**
 * Classic `/sync` tokens (`next_batch` / `since`) and room pagination tokens (`prev_batch`,
 * `/messages` `from`/`to`/`end`). Opaque to clients; inside, the positions of the mock's streams.
 *
 * - Sync token `s<rooms>_<toDevice>_<keys>_<accountData>`: every stream a response covers, so the
 *   next request knows what the client has seen — and which to-device messages it acknowledged.
 * - Pagination token `t<rooms>`: a point between stream positions `rooms` and `rooms + 1`.
 *   `/messages` also accepts a sync token and uses its room position, as Synapse does.
 */

export interface SyncPosition extends DeviceListPosition {
  rooms: number;
  /** The last to-device stream id delivered to (and, once this token comes back, acknowledged by) the device. */
  toDevice: number;
  keys: number;
  accountData: number;
}

export function formatSyncToken(p: SyncPosition): string {
  return `s${p.rooms}_${p.toDevice}_${p.keys}_${p.accountData}`;
}

const SYNC_TOKEN = /^s(\d{1,15})_(\d{1,15})_(\d{1,15})_(\d{1,15})$/;
const PAGINATION_TOKEN = /^t(\d{1,15})$/;

/** The positions in a sync token, or `undefined` when it is not one. */
export function parseSyncToken(token: string): SyncPosition | undefined {
  const m = SYNC_TOKEN.exec(token);
  if (!m) return undefined;
  return { rooms: Number(m[1]), toDevice: Number(m[2]), keys: Number(m[3]), accountData: Number(m[4]) };
}

export function formatPaginationToken(roomPosition: number): string {
  return `t${roomPosition}`;
}

/** The room position in a pagination or sync token, or `undefined` for anything else. */
export function parsePaginationToken(token: string): number | undefined {
  const m = PAGINATION_TOKEN.exec(token);
  if (m) return Number(m[1]);
  return parseSyncToken(token)?.rooms;
}

/** The streams a sync token covers, each with its current position (the `ServerState` stores). */
export interface SyncStreams {
  rooms: { readonly position: number };
  toDevice: { readonly position: number };
  keys: { readonly position: number };
  accountData: { readonly position: number };
}

/** Where every stream stands now: the newest position a token may carry. */
export function currentSyncPosition(streams: SyncStreams): SyncPosition {
  return {
    rooms: streams.rooms.position,
    toDevice: streams.toDevice.position,
    keys: streams.keys.position,
    accountData: streams.accountData.position,
  };
}

/** Whether every position in `p` is one the server has handed out (a token from the future is not). */
export function isReachable(p: SyncPosition, now: SyncPosition): boolean {
  return (
    p.rooms <= now.rooms &&
    p.toDevice <= now.toDevice &&
    p.keys <= now.keys &&
    p.accountData <= now.accountData
  );
}
