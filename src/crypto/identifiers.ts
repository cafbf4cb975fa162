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

/** The spec's limit: a user id, sigil and server name included, is at most 255 characters. */
export const MAX_USER_ID_LENGTH = 255;

/**
 * Whether `value` is a user id crypto-wasm takes and the spec allows ("User Identifiers": the
 * grammar, and at most 255 characters, which crypto-wasm does not check): an id it refuses can
 * have no devices it knows, and no server hands out a longer one.
 */
export function isValidUserId(value: unknown): value is string {
  if (typeof value !== "string" || value.length > MAX_USER_ID_LENGTH || !/^@[^:]+:.+$/.test(value)) {
    return false;
  }
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
