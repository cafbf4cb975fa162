import type { ServerState } from "./server-state.js";

/**
 * Creating and deleting devices touches several stores; doing it only here keeps them consistent.
 * A deleted device loses its keys and its to-device inbox, and the owner's device list changes
 * (Client-Server spec, "Tracking the device list for a user": clients learn it via `keys/changes`).
 */
export function loginNewDevice(
  state: ServerState,
  userId: string,
  options: { deviceId?: string; displayName?: string | null },
): { deviceId: string; accessToken: string } {
  const result = state.accounts.addDeviceWithToken(userId, { ...options, now: state.clock.now() });
  if (result.created) state.keys.noteDeviceListChange(userId);
  return { deviceId: result.deviceId, accessToken: result.accessToken };
}

/**
 * Creates a device row without an access token — a device no client logged in, such as one a
 * test injects as the server. A new row is a device-list change, announced as `loginNewDevice`
 * announces a login. Returns false, changing nothing, when the user already has that device.
 */
export function addDeviceWithoutToken(
  state: ServerState,
  userId: string,
  options: { deviceId: string; displayName: string | null },
): boolean {
  const created = state.accounts.addDevice(userId, {
    deviceId: options.deviceId,
    displayName: options.displayName,
    lastSeenTs: state.clock.now(),
    lastSeenIp: null,
  });
  if (created) state.keys.noteDeviceListChange(userId);
  return created;
}

export function deleteDevice(state: ServerState, userId: string, deviceId: string): void {
  const existed = state.accounts.removeDevice(userId, deviceId);
  state.keys.deleteDevice(userId, deviceId);
  state.toDevice.deleteDevice(userId, deviceId);
  state.sessionTokens.forgetDevice(userId, deviceId);
  // Synapse's `delete_devices` also drops the `dehydrated_devices` row (MSC3814).
  state.dehydratedDevices.forget(userId, deviceId);
  state.injectedDevices.forget(userId, deviceId);
  if (existed) state.keys.noteDeviceListChange(userId);
}
