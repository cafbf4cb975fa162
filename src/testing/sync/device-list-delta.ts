import type { KeyStore } from "../state/key-store.js";
import type { RoomStore } from "../state/room-store.js";

/**
 * `device_lists` for one sync response (Client-Server spec, "Tracking the device list for a user";
 * MSC3884 for sliding sync): which users' device lists the viewer must re-fetch, and which it may
 * stop tracking, since an earlier response.
 *
 * - `changed`: users the viewer shares a room with (and the viewer) whose devices or cross-signing
 *   keys changed after the position, plus users the viewer began to share a room with — a client
 *   has never fetched those, so they count as changed (Synapse's "newly joined or invited" rule).
 * - `left`: users the viewer shared a room with at the position and shares none with now.
 *
 * A user in `left` is never also in `changed`. Both lists are sorted, so responses are stable.
 */

/** The two streams a device-list delta depends on; a sync token or sliding-sync `pos` carries both. */
export interface DeviceListPosition {
  /** `KeyStore.position`. */
  keys: number;
  /** `RoomStore.position`. */
  rooms: number;
}

export interface DeviceListDelta {
  changed: string[];
  left: string[];
}

export interface DeviceListStores {
  keys: KeyStore;
  rooms: RoomStore;
}

/** Where the streams stand now: the position a response hands out with its delta. */
export function currentDeviceListPosition(stores: DeviceListStores): DeviceListPosition {
  return { keys: stores.keys.position, rooms: stores.rooms.position };
}

/** The delta for `viewer` from `since` up to now. */
export function deviceListDelta(
  stores: DeviceListStores,
  viewer: string,
  since: DeviceListPosition,
): DeviceListDelta {
  const sharing = stores.rooms.sharingChangesSince(viewer, since.rooms);
  const changed = new Set(sharing.started);
  for (const userId of stores.keys.changedUsersSince(viewer, since.keys)) {
    if (stores.rooms.sees(viewer, userId)) changed.add(userId);
  }
  return { changed: [...changed].sort(), left: sharing.stopped.filter((u) => !changed.has(u)).sort() };
}

/** Whether a delta has nothing to report (a long-poll keeps waiting on an empty one). */
export function isEmptyDeviceListDelta(delta: DeviceListDelta): boolean {
  return delta.changed.length === 0 && delta.left.length === 0;
}
