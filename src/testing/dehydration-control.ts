import { deleteDehydratedDevice, storeDehydratedDevice } from "./state/dehydrated-device-lifecycle.js";
import type { DehydratedDeviceRecord } from "./state/dehydrated-device-store.js";
import type { JsonObject } from "./state/key-store.js";
import type { ServerState } from "./state/server-state.js";

/**
 * Control calls for MSC3814 dehydrated devices (`MockControl.injectDehydratedDevice` and the
 * `…EventsFault` calls delegate here). An injected device skips every check a route makes, so
 * tests can play a hostile server: an unsigned device, one signed by another identity, one whose
 * id is not its Curve25519 key, or an ordinary device of the user claimed as the dehydrated one.
 */

export interface InjectDehydratedDeviceOptions {
  /** Any id, even one of the user's ordinary devices. */
  deviceId: string;
  /** Returned by `GET /dehydrated_device` exactly as given. */
  deviceData: unknown;
  /** Stored verbatim, shown by `keys/query`. Omit for a device without keys. */
  deviceKeys?: JsonObject;
  oneTimeKeys?: Record<string, unknown>;
  fallbackKeys?: Record<string, unknown>;
  displayName?: string | null;
}

/**
 * Makes a device the user's dehydrated device, replacing (deleting) the previous one as a PUT
 * would. Throws `RangeError` for an unknown user or an empty device id.
 */
export function injectDehydratedDevice(
  state: ServerState,
  userId: string,
  options: InjectDehydratedDeviceOptions,
): DehydratedDeviceRecord {
  if (!state.accounts.userExists(userId)) throw new RangeError(`unknown user ${userId}`);
  if (options.deviceId === "") throw new RangeError("deviceId must not be empty");
  if (state.dehydratedDevices.get(userId)?.deviceId !== options.deviceId)
    deleteDehydratedDevice(state, userId);
  storeDehydratedDevice(state, userId, {
    deviceId: options.deviceId,
    deviceData: options.deviceData,
    displayName: options.displayName ?? null,
    deviceKeys: options.deviceKeys,
    oneTimeKeys: options.oneTimeKeys,
    fallbackKeys: options.fallbackKeys,
  });
  return { deviceId: options.deviceId, deviceData: structuredClone(options.deviceData) };
}
