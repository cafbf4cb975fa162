import { type DeviceId, type OlmMachine, OwnUserIdentity } from "@matrix-org/matrix-sdk-crypto-wasm";
import { getCrossSigningStatus } from "../../crypto/cross-signing.js";
import { machineUserId, toDeviceId, toUserId } from "../../crypto/identifiers.js";
import { type KeyQueryLoop, refreshDeviceLists } from "../../crypto/refresh-device-lists.js";
import type { DehydratedDeviceFacts } from "./device-validation.js";

/** The facts, plus which self-signing key our identity has now (to notice an identity reset). */
export interface CollectedDeviceFacts extends DehydratedDeviceFacts {
  /** Public key of our identity's current self-signing key; `undefined` without an identity. */
  selfSigningKey: string | undefined;
}

/**
 * Has the machine query our own keys again — so the device list, our identity and every signature
 * are the machine's own, checked by crypto-wasm — then reads what it knows about `deviceId`. The
 * query goes through the outgoing-request loop like every other (`refresh-device-lists.ts`);
 * rejects with `key_query_failed` rather than judge a device by a list that was not refreshed.
 */
export async function collectDeviceFacts(
  machine: OlmMachine,
  loop: KeyQueryLoop,
  deviceId: string,
  signal?: AbortSignal,
): Promise<CollectedDeviceFacts> {
  await refreshOwnKeys(machine, loop, signal);
  return readDeviceFacts(machine, deviceId);
}

/**
 * A fresh query of our own keys, not the machine's cache: the device may have been uploaded
 * moments ago. Needs no device id, so it can run while the device is being looked up.
 */
export function refreshOwnKeys(machine: OlmMachine, loop: KeyQueryLoop, signal?: AbortSignal): Promise<void> {
  return refreshDeviceLists(machine, loop, [machineUserId(machine)], signal);
}

/** What the machine knows about `deviceId` now (after `refreshOwnKeys`); no network. */
export async function readDeviceFacts(machine: OlmMachine, deviceId: string): Promise<CollectedDeviceFacts> {
  const userId = machineUserId(machine);

  // getIdentity and getDevice only borrow these.
  const user = toUserId(userId);
  let id: DeviceId | undefined;
  try {
    id = toDeviceId(deviceId);
    const identity = await machine.getIdentity(user);
    let ownIdentityTrusted = false;
    let selfSigningKey: string | undefined;
    try {
      if (identity instanceof OwnUserIdentity) {
        const status = await getCrossSigningStatus(machine);
        // crypto-wasm keeps private keys only while they match the public identity, so holding the
        // master key means the identity the server reports is the one this device set up or restored.
        const holdsPrivateKeys = status.hasMaster && status.hasSelfSigning;
        ownIdentityTrusted = identity.isVerified() || holdsPrivateKeys;
        selfSigningKey = publicKeyOf(identity.selfSigningKey);
      }
    } finally {
      identity?.free();
    }

    const device = await machine.getDevice(user, id, 0);
    if (device === undefined) {
      return {
        deviceId,
        listed: false,
        flaggedDehydrated: false,
        curve25519Key: undefined,
        crossSignedByOwner: false,
        ownIdentityTrusted,
        selfSigningKey,
      };
    }
    try {
      const curve = device.curve25519Key;
      const curve25519Key = curve?.toBase64();
      curve?.free();
      return {
        deviceId,
        listed: true,
        flaggedDehydrated: device.isDehydrated,
        curve25519Key,
        crossSignedByOwner: device.isCrossSignedByOwner(),
        ownIdentityTrusted,
        selfSigningKey,
      };
    } finally {
      device.free();
    }
  } finally {
    user.free();
    id?.free();
  }
}

/** Our identity's current self-signing public key as the machine knows it; no network. */
export async function readOwnSelfSigningKey(machine: OlmMachine): Promise<string | undefined> {
  const user = toUserId(machineUserId(machine));
  try {
    const identity = await machine.getIdentity(user);
    try {
      return identity instanceof OwnUserIdentity ? publicKeyOf(identity.selfSigningKey) : undefined;
    } finally {
      identity?.free();
    }
  } finally {
    user.free();
  }
}

/** The single key of a cross-signing key object (JSON from crypto-wasm). */
function publicKeyOf(json: string): string | undefined {
  try {
    const parsed = JSON.parse(json) as { keys?: Record<string, unknown> };
    const value = Object.values(parsed.keys ?? {})[0];
    return typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}
