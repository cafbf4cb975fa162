import { DehydrationError } from "./errors.js";

/**
 * Why a device the server calls our dehydrated device is refused (MSC3814, "Security
 * considerations"): a homeserver controls both the device list and the dehydrated-device endpoint,
 * so without these checks it could hand a new login a device of its own making and read what is
 * later sent to it, or make it import room keys of the server's choosing.
 */
export type DehydratedDeviceRejection =
  /** Our own `keys/query` does not list it: the GET and the device list disagree. */
  | "not_in_device_list"
  /** Its signed device keys lack `"dehydrated": true`, so it is an ordinary device. */
  | "not_flagged_dehydrated"
  /** Its id is not its Curve25519 key, as crypto-wasm makes every dehydrated device. */
  | "id_not_curve25519_key"
  /** No valid signature by our self-signing key: unsigned, or signed by another identity. */
  | "not_cross_signed_by_owner"
  /**
   * This device does not trust the identity the server reports for us (not verified, and its
   * private keys are not held here): a signature by it proves nothing.
   */
  | "own_identity_not_trusted";

/** What this device knows about the candidate, as plain values (gathered by `device-facts.ts`). */
export interface DehydratedDeviceFacts {
  /** The id the server's `GET /dehydrated_device` named. */
  deviceId: string;
  /** Whether our own `keys/query` result lists it. */
  listed: boolean;
  flaggedDehydrated: boolean;
  /** Unpadded base64 of its Curve25519 key, when listed. */
  curve25519Key: string | undefined;
  /** Signed by the self-signing key of the identity the machine holds for us. */
  crossSignedByOwner: boolean;
  /** That identity is verified, or this device holds its private keys. */
  ownIdentityTrusted: boolean;
}

export type DehydratedDeviceVerdict =
  | { ok: true }
  | { ok: false; reasons: readonly [DehydratedDeviceRejection, ...DehydratedDeviceRejection[]] };

/** Every rule the device breaks, in a fixed order; `ok` only when it breaks none. */
export function validateDehydratedDevice(facts: DehydratedDeviceFacts): DehydratedDeviceVerdict {
  const reasons: DehydratedDeviceRejection[] = [];
  if (!facts.listed) {
    // The other facts describe a device the list does not have; only the identity still matters.
    reasons.push("not_in_device_list");
  } else {
    if (!facts.flaggedDehydrated) reasons.push("not_flagged_dehydrated");
    if (facts.curve25519Key === undefined || facts.curve25519Key !== facts.deviceId) {
      reasons.push("id_not_curve25519_key");
    }
    if (!facts.crossSignedByOwner) reasons.push("not_cross_signed_by_owner");
  }
  if (!facts.ownIdentityTrusted) reasons.push("own_identity_not_trusted");
  const [first, ...rest] = reasons;
  return first === undefined ? { ok: true } : { ok: false, reasons: [first, ...rest] };
}

/** The typed refusal: says a server may be injecting a device, and that nothing was deleted. */
export function deviceRejectedError(
  deviceId: string,
  reasons: readonly DehydratedDeviceRejection[],
): DehydrationError {
  return new DehydrationError(
    "device_rejected",
    `Refusing the server's dehydrated device ${deviceId} (${reasons.join(", ")}): the homeserver may be ` +
      "injecting a device; it was left in place",
    { details: { deviceId, reasons: [...reasons] } },
  );
}
