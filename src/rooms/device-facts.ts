import {
  type Device,
  type OlmMachine,
  type OtherUserIdentity,
  type OwnUserIdentity,
  LocalTrust as WasmLocalTrust,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { toUserId } from "../crypto/identifiers.js";
import type { DeviceFacts, IdentityFacts, LocalTrust, UserFacts } from "./recipient-plan.js";

/** The machine calls the facts are read with. */
export type FactsMachine = Pick<OlmMachine, "getUserDevices" | "getIdentity">;

/** What is known of Olm sessions per device: `available`/`unavailable` after a claim. */
export type OlmSessionState = (userId: string, deviceId: string) => DeviceFacts["olmSession"];

/**
 * Reads, as plain data, what the crypto layer knows of `userIds`' identities and devices. This
 * device is left out (it never gets its own room key), as are deleted devices. `waitSecs` lets a
 * key query in flight for a user finish first (crypto-wasm waits at most that long).
 */
export async function readUserFacts(
  machine: FactsMachine,
  own: { userId: string; deviceId: string },
  userIds: readonly string[],
  olmSession: OlmSessionState,
  waitSecs: number | undefined,
  identityOf: (userId: string) => Promise<IdentityFacts | undefined> = (userId) =>
    readIdentity(machine, userId),
): Promise<UserFacts[]> {
  // crypto-wasm's `getIdentity` waits up to 1 s while a key query for the user is due
  // (`machine.rs` `get_identity`, `Some(Duration::from_secs(1))`) — and a user whose server keeps
  // failing stays due for as long as crypto-wasm backs off. Read one after another, K such members
  // cost K seconds a send; read together, at most one.
  const identities = await Promise.all(userIds.map((userId) => identityOf(userId)));
  const users: UserFacts[] = [];
  for (const [index, userId] of userIds.entries()) {
    const identity = identities[index];
    // Borrowed by the call, so freed here.
    const wasmUserId = toUserId(userId);
    const listed = await machine.getUserDevices(wasmUserId, waitSecs).finally(() => wasmUserId.free());
    const devices: DeviceFacts[] = [];
    try {
      for (const device of listed.devices()) {
        try {
          // The getter hands out a new wasm id on each read.
          const wasmDeviceId = device.deviceId;
          const deviceId = wasmDeviceId.toString();
          wasmDeviceId.free();
          if (device.isDeleted() || (userId === own.userId && deviceId === own.deviceId)) continue;
          devices.push(deviceFacts(device, userId, deviceId, olmSession(userId, deviceId)));
        } finally {
          device.free();
        }
      }
    } finally {
      listed.free();
    }
    devices.sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
    users.push({ userId, identity, devices });
  }
  return users;
}

/** A user's cross-signing identity as the machine holds it, or `undefined` when none is known. */
export async function readIdentity(
  machine: FactsMachine,
  userId: string,
): Promise<IdentityFacts | undefined> {
  const wasmUserId = toUserId(userId);
  const identity: OwnUserIdentity | OtherUserIdentity | undefined = await machine
    .getIdentity(wasmUserId)
    .finally(() => wasmUserId.free());
  if (identity === undefined) return undefined;
  try {
    return { verified: identity.isVerified(), wasPreviouslyVerified: identity.wasPreviouslyVerified() };
  } finally {
    identity.free();
  }
}

function deviceFacts(
  device: Device,
  userId: string,
  deviceId: string,
  olmSession: DeviceFacts["olmSession"],
): DeviceFacts {
  // The getter hands out a new wasm key on each read.
  const curve25519 = device.curve25519Key;
  const hasCurve25519 = curve25519 !== undefined;
  curve25519?.free();
  return {
    userId,
    deviceId,
    displayName: device.displayName,
    dehydrated: device.isDehydrated,
    localTrust: localTrust(device.localTrustState),
    crossSignedByOwner: device.isCrossSignedByOwner(),
    crossSigningTrusted: device.isCrossSigningTrusted(),
    // A device without a Curve25519 key cannot take part in Olm at all.
    olmSession: hasCurve25519 ? olmSession : "unavailable",
  };
}

function localTrust(state: WasmLocalTrust): LocalTrust {
  switch (state) {
    case WasmLocalTrust.Verified:
      return "verified";
    case WasmLocalTrust.BlackListed:
      return "blacklisted";
    case WasmLocalTrust.Ignored:
      return "ignored";
    default:
      return "unset";
  }
}
