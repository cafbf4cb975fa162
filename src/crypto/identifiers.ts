import { DeviceId, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { SdkError } from "../errors/sdk-error.js";

/** `UserId` from a string, or an `SdkError` (`invalid_user_id`) instead of crypto-wasm's bare Error. */
export function toUserId(value: string): UserId {
  try {
    return new UserId(value);
  } catch (cause) {
    throw new SdkError("INVALID_USER_ID", "not a valid Matrix user id", {
      cause,
      details: { userId: value },
    });
  }
}

/** `DeviceId` from a string; crypto-wasm accepts any non-empty-ish string, we reject the empty one. */
export function toDeviceId(value: string): DeviceId {
  if (typeof value !== "string" || value.length === 0) {
    throw new SdkError("INVALID_DEVICE_ID", "a device id must be a non-empty string", {
      details: { deviceId: value },
    });
  }
  return new DeviceId(value);
}
