import { addDeviceWithoutToken, deleteDevice } from "./state/device-lifecycle.js";
import type { JsonObject } from "./state/key-store.js";
import type { ServerState } from "./state/server-state.js";

/**
 * Injecting extra devices into a user's device list (`MockControl.injectDeviceKeys`), for tests
 * that play a malicious or compromised server. Servers do not verify device signatures (Synapse
 * stores `keys/upload` objects as given), so nothing stops one from listing a device its user
 * never created in order to be sent room keys. MSC3814's security section is the clients'
 * defence for dehydrated devices: a sender must not encrypt to a dehydrated device its owner has
 * not cross-signed. An injected device lets a test check that a client holds to it.
 */

export interface InjectDeviceKeysOptions {
  /** The new device's id; it must not name a device the user created (or their dehydrated one). */
  deviceId: string;
  /**
   * Served by `keys/query` as given — no signature is checked, `"dehydrated": true` stays if
   * present — except `unsigned`, which the server rebuilds as for any device (Synapse does).
   * Its `user_id` and `device_id` must name the device.
   */
  deviceKeys: JsonObject;
  /** `<algorithm>:<key id>` → key, claimable through `keys/claim`, oldest first. */
  oneTimeKeys?: Record<string, unknown>;
  /** `<algorithm>:<key id>` → key, handed out by `keys/claim` once the one-time keys run out. */
  fallbackKeys?: Record<string, unknown>;
  /** Listed by `GET /devices` and in `keys/query`'s `unsigned.device_display_name`. */
  displayName?: string | null;
}

export interface InjectedDevice {
  userId: string;
  deviceId: string;
  /** True when an earlier injected device with this id was replaced. */
  replaced: boolean;
}

/**
 * Adds the device, or replaces the injected device of that id: a replacement starts afresh, as if
 * the old one were deleted (keys, one-time keys and inbox gone) and the new one then created.
 * Either way the user's device list changes, so users who share a room with them see the user in
 * `/sync` `device_lists.changed` and `keys/changes`, as after a login. The user's other devices,
 * the dehydrated one included, are left alone.
 *
 * Throws `RangeError` for an unknown user, an empty device id, an id naming a device the user
 * created, `deviceKeys` that are not an object or whose `user_id` / `device_id` differ, or a key
 * id that is not `<algorithm>:<key id>`. Nothing changes when it throws.
 */
export function injectDeviceKeys(
  state: ServerState,
  userId: string,
  options: InjectDeviceKeysOptions,
): InjectedDevice {
  const { deviceId, deviceKeys } = options;
  if (!state.accounts.userExists(userId)) throw new RangeError(`unknown user ${userId}`);
  if (typeof deviceId !== "string" || deviceId === "") {
    throw new RangeError("deviceId must be a non-empty string");
  }
  const replaced = state.injectedDevices.has(userId, deviceId);
  if (!replaced && state.accounts.hasDevice(userId, deviceId)) {
    // Re-keying a device its owner holds is another attack (crypto-wasm refuses changed keys of a
    // known device); an injected device is always one the user never had.
    throw new RangeError(`${userId} already has a device ${deviceId} that was not injected`);
  }
  if (!isObject(deviceKeys)) throw new RangeError("deviceKeys must be an object");
  if (deviceKeys.user_id !== userId) throw new RangeError(`deviceKeys.user_id must be ${userId}`);
  if (deviceKeys.device_id !== deviceId) throw new RangeError(`deviceKeys.device_id must be ${deviceId}`);
  const oneTimeKeys = keyMap(options.oneTimeKeys, "oneTimeKeys");
  const fallbackKeys = keyMap(options.fallbackKeys, "fallbackKeys");

  if (replaced) deleteDevice(state, userId, deviceId);
  addDeviceWithoutToken(state, userId, { deviceId, displayName: options.displayName ?? null });
  state.injectedDevices.add(userId, deviceId);
  state.keys.setDeviceKeys(userId, deviceId, deviceKeys);
  // A fresh device holds no keys yet, so no id can conflict.
  if (Object.keys(oneTimeKeys).length > 0) state.keys.addOneTimeKeys(userId, deviceId, oneTimeKeys);
  if (Object.keys(fallbackKeys).length > 0) state.keys.setFallbackKeys(userId, deviceId, fallbackKeys);
  return { userId, deviceId, replaced };
}

/** Checks the ids as `keys/upload` does (Synapse's `KeyUploadRequestBody` validators). */
function keyMap(keys: Record<string, unknown> | undefined, name: string): Record<string, unknown> {
  if (keys === undefined) return {};
  if (!isObject(keys)) throw new RangeError(`${name} must be an object`);
  for (const id of Object.keys(keys)) {
    if (id.split(":").length !== 2) {
      throw new RangeError(`${name} key id ${JSON.stringify(id)} is not "<algorithm>:<key id>"`);
    }
  }
  return keys;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
