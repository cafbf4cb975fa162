import { DeviceId, type OlmMachine, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { SdkError } from "../errors/sdk-error.js";
import type { CryptoErrorCode } from "./errors.js";

/** `UserId` from a string, or an `SdkError` (`invalid_user_id`) instead of crypto-wasm's bare Error. */
export function toUserId(value: string): UserId {
  try {
    return new UserId(value);
  } catch (cause) {
    throw new SdkError<CryptoErrorCode>("invalid_user_id", "not a valid Matrix user id", {
      cause,
      details: { userId: value },
    });
  }
}

/**
 * Whether crypto-wasm takes `value` as a user id (the grammar of the spec's "User Identifiers",
 * with its length limit): an id it refuses can have no devices it knows.
 */
export function isValidUserId(value: unknown): value is string {
  if (typeof value !== "string" || !/^@[^:]+:.+$/.test(value)) return false;
  try {
    new UserId(value).free();
    return true;
  } catch {
    return false;
  }
}

/** `DeviceId` from a string; crypto-wasm accepts any non-empty-ish string, we reject the empty one. */
export function toDeviceId(value: string): DeviceId {
  if (typeof value !== "string" || value.length === 0) {
    throw new SdkError<CryptoErrorCode>("invalid_device_id", "a device id must be a non-empty string", {
      details: { deviceId: value },
    });
  }
  return new DeviceId(value);
}

/**
 * The machine's user id as text. crypto-wasm's `userId` getter hands out a new wasm `UserId` on
 * every read; it is freed here rather than left to the garbage collector.
 */
export function machineUserId(machine: Pick<OlmMachine, "userId">): string {
  const id = machine.userId;
  try {
    return id.toString();
  } finally {
    id.free();
  }
}

/** The machine's device id as text; the getter's `DeviceId` is freed (see `machineUserId`). */
export function machineDeviceId(machine: Pick<OlmMachine, "deviceId">): string {
  const id = machine.deviceId;
  try {
    return id.toString();
  } finally {
    id.free();
  }
}
