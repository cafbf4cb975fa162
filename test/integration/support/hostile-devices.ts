import {
  DecryptionSettings,
  DehydratedDeviceKey,
  DeviceId,
  DeviceLists,
  OlmMachine,
  ProcessedToDeviceEventType,
  RequestType,
  TrustRequirement,
  UserId,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import type { InjectDeviceKeysOptions, MockHomeserver, ToDeviceEvent } from "../../../src/testing/index.js";

/**
 * Real devices a malicious or compromised server could slip into a victim user's device list to
 * collect room keys, built with real crypto-wasm so that a client's crypto-wasm accepts them: each
 * device's self-signature is valid (crypto-wasm drops devices whose own signature fails), and each
 * carries signed one-time and fallback keys, so a sender can claim an Olm session with it and
 * faces the choice the MSC3814 security section settles — senders must not encrypt to a
 * dehydrated device that is not cross-signed by its owner — instead of withholding with
 * `m.no_olm` for want of a session.
 *
 * The attacker keeps each device's private side, so a test can feed it whatever reached its inbox
 * (`MockControl.toDeviceInbox`) and prove that no room key did. Inject a device with
 * `MockControl.injectDeviceKeys(device.userId, device.injection)` (or `POST /_mock/device_keys`).
 * Call `loadCryptoWasm()` (or crypto-wasm's `initAsync()`) before building any.
 */

/**
 * - `unsigned`: a dehydrated device (`"dehydrated": true` inside its signed `device_keys`) with no
 *   self-signing-key signature. Signatures cover the object without `signatures` (spec, "Signing
 *   JSON"), so dropping one leaves the device's own signature valid.
 * - `foreign_ssk`: a dehydrated device signed by another self-signing key: that of an identity the
 *   attacker made up for the victim user, which does not match the one the user published.
 * - `forged_signature`: a dehydrated device with a signature under the victim's real
 *   self-signing key id whose bytes are random.
 * - `unsigned_ordinary`: an ordinary (not dehydrated) device not signed by the victim's
 *   self-signing key, for comparison: no dehydration rule applies to it, so which senders share
 *   with it is a matter of their sharing strategy alone.
 */
export type HostileDeviceVariant = "unsigned" | "foreign_ssk" | "forged_signature" | "unsigned_ordinary";

export const dehydratedHostileVariants = ["unsigned", "foreign_ssk", "forged_signature"] as const;

export const hostileDeviceVariants: readonly HostileDeviceVariant[] = [
  ...dehydratedHostileVariants,
  "unsigned_ordinary",
];

/** Signed device keys as `keys/upload` (or a dehydrated-device PUT) carries them. */
export interface HostileDeviceKeys {
  user_id: string;
  device_id: string;
  algorithms: string[];
  keys: Record<string, string>;
  dehydrated?: boolean;
  signatures: Record<string, Record<string, string>>;
  [field: string]: unknown;
}

/** What the attacker got out of the to-device events it was given. */
export interface InboxDecryption {
  /** Megolm room keys (`m.room_key`) the device obtained. */
  roomKeys: number;
  /** Which: room and session id of each. */
  sessions: { roomId: string; sessionId: string }[];
  /**
   * To-device events that decrypted, of any type. Known for `unsigned_ordinary` only: a
   * rehydrated device (crypto-wasm's `RehydratedDevice.receiveEvents`) reports the room keys it
   * imported and nothing else, so this is `undefined` for the dehydrated variants.
   */
  decrypted: number | undefined;
}

export interface HostileDevice {
  variant: HostileDeviceVariant;
  /** The victim user the device claims to belong to. */
  userId: string;
  /** For the dehydrated variants, the device's Curve25519 key, as crypto-wasm names them. */
  deviceId: string;
  /** Whether `deviceKeys` carries `"dehydrated": true` (inside what the device signed). */
  dehydrated: boolean;
  deviceKeys: HostileDeviceKeys;
  /** Signed `signed_curve25519` one-time keys, `<algorithm>:<key id>` → key (50 of them). */
  oneTimeKeys: Record<string, unknown>;
  /** One signed fallback key. */
  fallbackKeys: Record<string, unknown>;
  /** The options `MockControl.injectDeviceKeys(userId, …)` takes for this device. */
  injection: InjectDeviceKeysOptions;
  /**
   * Feeds to-device events (as `toDeviceInbox` returns them) to the device's private side and
   * counts what it could read. The dehydrated variants rehydrate the device afresh on every call,
   * as a client opening it would (a dehydrated device never replies, so each message to it is an
   * Olm pre-key message that opens alone): the answer depends only on the events given. The
   * ordinary variant is one stateful machine: give it each event once.
   */
  decryptInbox(events: readonly ToDeviceEvent[]): Promise<InboxDecryption>;
  /** Frees the attacker's machine. */
  close(): void;
}

export interface HostileDeviceOptions {
  /** Listed as the device's display name. Default "Hostile device". */
  displayName?: string;
  /** `unsigned_ordinary` only (the dehydrated variants are named after their key). Default random. */
  deviceId?: string;
}

export interface Victim {
  userId: string;
  /**
   * The unpadded-base64 public self-signing key the victim published (`publishedSelfSigningKey`);
   * only `forged_signature` needs it, to forge a signature under its key id.
   */
  selfSigningKey?: string;
}

/**
 * The self-signing public key the server holds for `userId` (what `keys/query` serves), for
 * `Victim.selfSigningKey`. Throws when the user has published none.
 */
export function publishedSelfSigningKey(homeserver: MockHomeserver, userId: string): string {
  const key = homeserver.state.keys.crossSigningPublicKey(userId, "self_signing");
  if (key === undefined || key === "") throw new Error(`${userId} has published no self-signing key`);
  return key;
}

/** Builds one hostile device claiming to be `victim.userId`'s. */
export async function createHostileDevice(
  variant: HostileDeviceVariant,
  victim: Victim,
  options: HostileDeviceOptions = {},
): Promise<HostileDevice> {
  const displayName = options.displayName ?? "Hostile device";
  if (variant === "unsigned_ordinary") {
    return ordinaryDevice(victim.userId, options.deviceId ?? `HOSTILE${randomId()}`, displayName);
  }
  if (options.deviceId !== undefined) {
    throw new Error(
      "a dehydrated hostile device is named after its Curve25519 key; deviceId cannot be chosen",
    );
  }
  if (variant === "forged_signature" && victim.selfSigningKey === undefined) {
    throw new Error("forged_signature needs the victim's published selfSigningKey");
  }
  return dehydratedDevice(variant, victim, displayName);
}

/** One device of each variant in `variants` (default: all four) for the same victim. */
export async function createHostileDevices(
  victim: Victim,
  variants: readonly HostileDeviceVariant[] = hostileDeviceVariants,
): Promise<HostileDevice[]> {
  const devices: HostileDevice[] = [];
  for (const variant of variants) devices.push(await createHostileDevice(variant, victim));
  return devices;
}

interface DehydratedPutBody {
  device_id: string;
  device_data: unknown;
  device_keys: HostileDeviceKeys;
  one_time_keys: Record<string, unknown>;
  fallback_keys: Record<string, unknown>;
}

async function dehydratedDevice(
  variant: Exclude<HostileDeviceVariant, "unsigned_ordinary">,
  victim: Victim,
  displayName: string,
): Promise<HostileDevice> {
  const { userId } = victim;
  // `keysForUpload` signs the device with the machine's private self-signing key, so the attacker
  // machine makes up a cross-signing identity of its own for the victim user (never uploaded).
  const attacker = await OlmMachine.initialize(new UserId(userId), new DeviceId(`ATTACKER${randomId()}`));
  try {
    (await attacker.bootstrapCrossSigning(true)).free();
    const pickleKey = globalThis.crypto.getRandomValues(new Uint8Array(32));
    const devices = attacker.dehydratedDevices();
    const device = await devices.create();
    const request = await device.keysForUpload(
      displayName,
      DehydratedDeviceKey.createKeyFromArray(pickleKey),
    );
    const body = JSON.parse(request.body) as DehydratedPutBody;
    request.free();
    device.free();
    devices.free();

    const deviceId = body.device_id;
    const ownKeyId = `ed25519:${deviceId}`;
    const deviceKeys = structuredClone(body.device_keys);
    const own = deviceKeys.signatures[userId]?.[ownKeyId];
    if (own === undefined || deviceKeys.dehydrated !== true) {
      throw new Error("crypto-wasm's dehydrated device keys lack the self-signature or the dehydrated flag");
    }
    if (variant === "unsigned") deviceKeys.signatures = { [userId]: { [ownKeyId]: own } };
    if (variant === "forged_signature") {
      deviceKeys.signatures = {
        [userId]: { [ownKeyId]: own, [`ed25519:${victim.selfSigningKey}`]: randomBase64(64) },
      };
    }
    // `foreign_ssk` keeps what crypto-wasm made: signed by the attacker's self-signing key.

    const deviceData = body.device_data;
    return {
      variant,
      userId,
      deviceId,
      dehydrated: true,
      deviceKeys,
      oneTimeKeys: body.one_time_keys,
      fallbackKeys: body.fallback_keys,
      injection: injection(deviceId, deviceKeys, body.one_time_keys, body.fallback_keys, displayName),
      async decryptInbox(events) {
        // A fresh machine each time, so keys imported by an earlier call do not hide these.
        const opener = await OlmMachine.initialize(new UserId(userId), new DeviceId(`OPENER${randomId()}`));
        try {
          const rehydrated = await opener
            .dehydratedDevices()
            .rehydrate(
              DehydratedDeviceKey.createKeyFromArray(pickleKey),
              new DeviceId(deviceId),
              JSON.stringify(deviceData),
            );
          const infos = await rehydrated.receiveEvents(
            JSON.stringify(events),
            new DecryptionSettings(TrustRequirement.Untrusted),
          );
          rehydrated.free();
          const sessions = infos.map((info) => ({
            roomId: info.roomId.toString(),
            sessionId: info.sessionId,
          }));
          return { roomKeys: sessions.length, sessions, decrypted: undefined };
        } finally {
          opener.close();
        }
      },
      close: () => {},
    };
  } finally {
    attacker.close();
  }
}

async function ordinaryDevice(userId: string, deviceId: string, displayName: string): Promise<HostileDevice> {
  const machine = await OlmMachine.initialize(new UserId(userId), new DeviceId(deviceId));
  // A sync that reports no one-time keys and passes a fallback-key set makes the machine create
  // both (rust-sdk `generate_one_time_keys_if_needed`, `generate_fallback_key_if_needed`).
  await machine.receiveSyncChanges("[]", new DeviceLists(), new Map([["signed_curve25519", 0]]), new Set());
  const upload = (await machine.outgoingRequests()).find((r) => r.type === RequestType.KeysUpload);
  if (upload === undefined) throw new Error("the attacker's machine made no keys/upload");
  const body = JSON.parse(upload.body) as {
    device_keys: HostileDeviceKeys;
    one_time_keys?: Record<string, unknown>;
    fallback_keys?: Record<string, unknown>;
  };
  const oneTimeKeys = body.one_time_keys ?? {};
  const fallbackKeys = body.fallback_keys ?? {};
  // The keys are published by injection, not by this request; tell the machine they are up.
  await machine.markRequestAsSent(
    upload.id!,
    RequestType.KeysUpload,
    JSON.stringify({ one_time_key_counts: { signed_curve25519: Object.keys(oneTimeKeys).length } }),
  );
  const deviceKeys = body.device_keys;
  return {
    variant: "unsigned_ordinary",
    userId,
    deviceId,
    dehydrated: false,
    deviceKeys,
    oneTimeKeys,
    fallbackKeys,
    injection: injection(deviceId, deviceKeys, oneTimeKeys, fallbackKeys, displayName),
    async decryptInbox(events) {
      const processed = await machine.receiveSyncChanges(
        JSON.stringify(events),
        new DeviceLists(),
        new Map([["signed_curve25519", Object.keys(oneTimeKeys).length]]),
        new Set(),
        new DecryptionSettings(TrustRequirement.Untrusted),
      );
      const decrypted = processed
        .filter((e) => e.type === ProcessedToDeviceEventType.Decrypted)
        .map((e) => JSON.parse(e.rawEvent) as { type: string; content: Record<string, unknown> });
      const sessions = decrypted
        .filter((e) => e.type === "m.room_key")
        .map((e) => ({ roomId: String(e.content.room_id), sessionId: String(e.content.session_id) }));
      return { roomKeys: sessions.length, sessions, decrypted: decrypted.length };
    },
    close: () => machine.close(),
  };
}

function injection(
  deviceId: string,
  deviceKeys: HostileDeviceKeys,
  oneTimeKeys: Record<string, unknown>,
  fallbackKeys: Record<string, unknown>,
  displayName: string,
): InjectDeviceKeysOptions {
  return {
    deviceId,
    deviceKeys: structuredClone(deviceKeys),
    oneTimeKeys: structuredClone(oneTimeKeys),
    fallbackKeys: structuredClone(fallbackKeys),
    displayName,
  };
}

function randomId(): string {
  return Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(6)))
    .toString("hex")
    .toUpperCase();
}

/** Unpadded standard base64, as Matrix writes keys and signatures. */
function randomBase64(bytes: number): string {
  return Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(bytes)))
    .toString("base64")
    .replace(/=+$/, "");
}
