import { DehydratedDeviceKey, DeviceId, OlmMachine, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import type { InjectDeviceKeysOptions, MockHomeserver } from "matrix-e2ee-devices/testing";
import { DemoError } from "./demo-error.js";

/**
 * What a malicious or compromised server can do to collect room keys: list a dehydrated device of
 * its own making as one of Alice's (MSC3814, "Security considerations"). Servers check no device
 * signature, so it only has to be a device other clients' crypto accepts: keys signed by the device
 * itself, a `"dehydrated": true` flag, and one-time keys so a sender can open an Olm session with it.
 * What it cannot have is a signature by Alice's self-signing key — that needs her private key.
 *
 * The device is made the way a real client makes one — a crypto-wasm machine of the attacker's, a
 * cross-signing identity it invents for Alice (never uploaded), `dehydratedDevices().create()`,
 * `keysForUpload` — and then keeps only the device's own signature. The attacker's private side is
 * thrown away: the demo proves from the server's side (the device's to-device inbox) that no room
 * key was sent to it.
 */

export interface RogueDevice {
  /** Its Curve25519 key, as crypto-wasm names dehydrated devices. */
  deviceId: string;
  /** What `control.injectDeviceKeys(userId, …)` takes. */
  injection: InjectDeviceKeysOptions;
}

interface DehydratedPutBody {
  device_id: string;
  device_keys: {
    dehydrated?: boolean;
    signatures: Record<string, Record<string, string>>;
    [field: string]: unknown;
  };
  one_time_keys: Record<string, unknown>;
  fallback_keys: Record<string, unknown>;
}

/** Builds an unsigned dehydrated device claiming to be `userId`'s. Needs crypto-wasm loaded. */
export async function createRogueDehydratedDevice(userId: string, displayName: string): Promise<RogueDevice> {
  const attacker = await OlmMachine.initialize(new UserId(userId), new DeviceId(`ATTACKER${randomHex()}`));
  try {
    // `keysForUpload` signs with the machine's own self-signing key, so the machine needs one: an
    // identity the attacker made up for Alice. Its signature is removed below.
    (await attacker.bootstrapCrossSigning(true)).free();
    const devices = attacker.dehydratedDevices();
    const device = await devices.create();
    const key = DehydratedDeviceKey.createRandomKey();
    const request = await device.keysForUpload(displayName, key);
    const body = JSON.parse(request.body) as DehydratedPutBody;
    request.free();
    key.free();
    device.free();
    devices.free();

    const deviceId = body.device_id;
    const keys = body.device_keys;
    const own = keys.signatures[userId]?.[`ed25519:${deviceId}`];
    if (own === undefined || keys.dehydrated !== true) {
      throw new DemoError("rogue_device", "crypto-wasm's dehydrated device lacks its signature or flag");
    }
    // A signature covers the object without `signatures` (spec, "Signing JSON"): dropping the
    // self-signing key's leaves the device's own valid. Unsigned by Alice, and nothing else changed.
    keys.signatures = { [userId]: { [`ed25519:${deviceId}`]: own } };
    return {
      deviceId,
      injection: {
        deviceId,
        deviceKeys: keys,
        oneTimeKeys: body.one_time_keys,
        fallbackKeys: body.fallback_keys,
        displayName,
      },
    };
  } finally {
    attacker.close();
  }
}

/** What reached the device, as the server stored it: room keys (Olm-encrypted) and withheld notices. */
export interface RogueInbox {
  /** `m.room.encrypted` to-device messages: the only kind that can carry a room key. */
  roomKeys: number;
  /** `m.room_key.withheld` notices, with the codes they gave. */
  withheld: number;
  codes: string[];
}

export function rogueInbox(hs: MockHomeserver, userId: string, deviceId: string): RogueInbox {
  const { events } = hs.control.toDeviceInbox(userId, deviceId);
  const withheld = events.filter((e) => e.type === "m.room_key.withheld");
  return {
    roomKeys: events.filter((e) => e.type === "m.room.encrypted").length,
    withheld: withheld.length,
    codes: [...new Set(withheld.map((e) => String((e.content as { code?: unknown }).code)))],
  };
}

function randomHex(): string {
  return Array.from(globalThis.crypto.getRandomValues(new Uint8Array(6)), (b) =>
    b.toString(16).padStart(2, "0"),
  )
    .join("")
    .toUpperCase();
}
