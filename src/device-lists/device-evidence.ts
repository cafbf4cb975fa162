import type { DeviceId, OlmMachine, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { toUserId } from "../crypto/identifiers.js";
import type { ListedDevice, SigningSnapshot } from "./detectors.js";

/**
 * The thin I/O shell of the detectors: what the crypto layer holds of a user's devices, read into
 * the plain data they judge. Every wasm object is freed here.
 */

/** The machine calls these reads make (`OlmMachine` fits). */
export type EvidenceMachine = Pick<OlmMachine, "getUserDevices" | "getIdentity" | "trackedUsers">;

/** The user's devices as listed now, without waiting for a query in flight; deleted ones left out. */
export async function listedDevices(machine: EvidenceMachine, userId: string): Promise<ListedDevice[]> {
  const listed = await withUserId(userId, (id) => machine.getUserDevices(id));
  const out: ListedDevice[] = [];
  try {
    for (const device of listed.devices()) {
      try {
        if (device.isDeleted()) continue;
        const curve = device.curve25519Key;
        out.push({ deviceId: deviceIdOf(device), curve25519Key: curve?.toBase64() });
        curve?.free();
      } finally {
        device.free();
      }
    }
  } finally {
    listed.free();
  }
  return out;
}

/**
 * Whether the user has cross-signing keys, and which of their devices the owner signed. This
 * device is left out: it knows its own keys, whatever a list says.
 */
export async function signingSnapshot(
  machine: EvidenceMachine,
  userId: string,
  own: { userId: string; deviceId: string },
): Promise<SigningSnapshot> {
  const identity = await withUserId(userId, (id) => machine.getIdentity(id));
  if (identity === undefined) return { hasCrossSigningKeys: false, devices: [] };
  identity.free();
  const listed = await withUserId(userId, (id) => machine.getUserDevices(id));
  const devices: { deviceId: string; crossSignedByOwner: boolean }[] = [];
  try {
    for (const device of listed.devices()) {
      try {
        if (device.isDeleted()) continue;
        const deviceId = deviceIdOf(device);
        if (userId === own.userId && deviceId === own.deviceId) continue;
        devices.push({ deviceId, crossSignedByOwner: device.isCrossSignedByOwner() });
      } finally {
        device.free();
      }
    }
  } finally {
    listed.free();
  }
  return { hasCrossSigningKeys: true, devices };
}

/** The users whose lists the machine follows, as text. */
export async function trackedUserIds(machine: EvidenceMachine): Promise<string[]> {
  const tracked = await machine.trackedUsers();
  const out: string[] = [];
  for (const user of tracked) {
    out.push(user.toString());
    user.free();
  }
  return out;
}

/**
 * `read` with a wasm `UserId` for `userId`, freed once the read settled: `getUserDevices` and
 * `getIdentity` only borrow the id they are given (their glue asserts the class and reads the
 * pointer, it never takes the object over), so it is ours to free.
 */
async function withUserId<T>(userId: string, read: (id: UserId) => Promise<T>): Promise<T> {
  const id = toUserId(userId);
  try {
    return await read(id);
  } finally {
    id.free();
  }
}

/** A device's id as text: the `deviceId` getter hands out a new wasm `DeviceId` on every read. */
function deviceIdOf(device: { readonly deviceId: DeviceId }): string {
  const id = device.deviceId;
  try {
    return id.toString();
  } finally {
    id.free();
  }
}
