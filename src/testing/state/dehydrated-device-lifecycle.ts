import { deleteDevice } from "./device-lifecycle.js";
import type { JsonObject } from "./key-store.js";
import type { ServerState } from "./server-state.js";

/**
 * Creating and deleting a user's MSC3814 dehydrated device. It is an ordinary device row (listed
 * by `GET /devices`, reached by `"*"` to-device sends, shown by `keys/query`, its keys claimable)
 * that has no access token, plus the record naming it as the dehydrated one.
 */

export interface DehydratedDeviceUpload {
  deviceId: string;
  /** Stored and returned exactly as given. */
  deviceData: unknown;
  displayName: string | null;
  /** Stored as given (the server never checks a signature); an empty object stores nothing, as Synapse. */
  deviceKeys?: JsonObject | undefined;
  oneTimeKeys?: Record<string, unknown> | undefined;
  fallbackKeys?: Record<string, unknown> | undefined;
}

/**
 * Deletes the user's dehydrated device like any device — its row, keys and to-device inbox go,
 * and the owner's device list changes. Returns its id, or `undefined` when there was none.
 */
export function deleteDehydratedDevice(state: ServerState, userId: string): string | undefined {
  const current = state.dehydratedDevices.get(userId);
  if (!current) return undefined;
  deleteDevice(state, userId, current.deviceId);
  // `deleteDevice` forgets the record; this covers a record whose device row was already gone.
  state.dehydratedDevices.forget(userId, current.deviceId);
  return current.deviceId;
}

/**
 * Creates the device row without a token; an existing row with that id is reused, as Synapse's
 * `store_device` does (`check_device_registered`). A new row is a device-list change.
 */
export function registerDehydratedDeviceRow(
  state: ServerState,
  userId: string,
  deviceId: string,
  displayName: string | null,
): void {
  const created = state.accounts.addDevice(userId, {
    deviceId,
    displayName,
    lastSeenTs: null,
    lastSeenIp: null,
  });
  if (created) state.keys.noteDeviceListChange(userId);
}

/**
 * Creates the device row if needed, stores its keys, and records it as the user's dehydrated
 * device. A previous dehydrated device still recorded is deleted afterwards (Synapse's
 * `store_dehydrated_device`); routes that delete it first leave nothing for this step.
 */
export function storeDehydratedDevice(
  state: ServerState,
  userId: string,
  upload: DehydratedDeviceUpload,
): void {
  registerDehydratedDeviceRow(state, userId, upload.deviceId, upload.displayName);
  if (upload.deviceKeys && Object.keys(upload.deviceKeys).length > 0) {
    state.keys.setDeviceKeys(userId, upload.deviceId, upload.deviceKeys);
  }
  if (upload.oneTimeKeys && Object.keys(upload.oneTimeKeys).length > 0) {
    state.keys.addOneTimeKeys(userId, upload.deviceId, upload.oneTimeKeys, "keep-existing");
  }
  if (upload.fallbackKeys && Object.keys(upload.fallbackKeys).length > 0) {
    state.keys.setFallbackKeys(userId, upload.deviceId, upload.fallbackKeys);
  }
  const previous = state.dehydratedDevices.set(userId, {
    deviceId: upload.deviceId,
    deviceData: upload.deviceData,
  });
  if (previous && previous.deviceId !== upload.deviceId) deleteDevice(state, userId, previous.deviceId);
}
