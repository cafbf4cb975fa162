import {
  DecryptionSettings,
  DeviceLists,
  type OlmMachine,
  type ProcessedToDeviceEvent,
  ProcessedToDeviceEventType,
  TrustRequirement,
  type UserId,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { toUserId } from "../crypto/identifiers.js";
import { sha256Hex } from "../crypto/sha256.js";
import type { Logger } from "../logger.js";
import type { CryptoSyncCall } from "./e2ee-changes.js";

/** A to-device event the crypto layer processed, as plain data. */
export interface ReceivedToDeviceEvent {
  /**
   * Stable for the same event: the SHA-256 (hex) of what the crypto layer returned (the
   * decrypted event, or the event as received when it was not decrypted). A batch replayed after
   * a reload yields the same ids for events delivered in clear; an Olm message decrypted once
   * cannot be decrypted twice, so its replay comes back `unable_to_decrypt`, with another id.
   */
  id: string;
  kind: "decrypted" | "unable_to_decrypt" | "plaintext" | "invalid";
  /** The event: decrypted when `kind` is `decrypted` (room-key material zeroised by crypto-wasm). */
  event: Record<string, unknown>;
  /**
   * For decrypted events: who sent it, as the Olm session proves (`curve25519Key`). `deviceId` may
   * be `undefined` for `m.room_key`, whose sender checks crypto-wasm defers; it names the device for
   * every other type (which it does not decrypt without the sender's device keys).
   */
  sender?: { userId: string; deviceId: string | undefined; curve25519Key: string; verified: boolean };
}

/** The slice of the machine one sync call needs. */
export type SyncMachine = Pick<OlmMachine, "receiveSyncChanges" | "receiveSyncChangesMsc4186">;

/**
 * Makes the one crypto call of a sync response. "Unchanged" reaches crypto-wasm as its own
 * encoding: an empty `Map` of counts (read as unchanged by `receiveSyncChangesMsc4186` only — a
 * classic call always carries the count) and no fallback `Set`; `[]` becomes an empty `Set`.
 */
export async function applyCryptoSyncCall(
  machine: SyncMachine,
  call: CryptoSyncCall,
  logger: Logger,
): Promise<ReceivedToDeviceEvent[]> {
  const lists = new DeviceLists(userIds(call.changed, logger), userIds(call.left, logger));
  const counts = new Map(Object.entries(call.oneTimeKeyCounts ?? {}));
  const fallback =
    call.unusedFallbackKeyTypes === undefined ? undefined : new Set(call.unusedFallbackKeyTypes);
  // Consumed by the call, like the `UserId`s handed to `DeviceLists`.
  const settings = new DecryptionSettings(TrustRequirement.Untrusted);
  let processed: ProcessedToDeviceEvent[];
  try {
    processed = await machine[call.method](
      JSON.stringify(call.toDeviceEvents),
      lists,
      counts,
      fallback,
      settings,
    );
  } finally {
    lists.free();
  }
  const received: ReceivedToDeviceEvent[] = [];
  for (const item of processed) {
    try {
      received.push(await toPlain(item));
    } finally {
      item.free();
    }
  }
  return received;
}

/** Ids the server sent that crypto-wasm cannot parse are left out (and logged), not fatal. */
function userIds(ids: readonly string[], logger: Logger): UserId[] {
  const out: UserId[] = [];
  for (const id of ids) {
    try {
      out.push(toUserId(id));
    } catch {
      logger.warn("ignoring an invalid user id in device_lists");
    }
  }
  return out;
}

const KINDS: Record<ProcessedToDeviceEventType, ReceivedToDeviceEvent["kind"]> = {
  [ProcessedToDeviceEventType.Decrypted]: "decrypted",
  [ProcessedToDeviceEventType.UnableToDecrypt]: "unable_to_decrypt",
  [ProcessedToDeviceEventType.PlainText]: "plaintext",
  [ProcessedToDeviceEventType.Invalid]: "invalid",
};

async function toPlain(item: ProcessedToDeviceEvent): Promise<ReceivedToDeviceEvent> {
  const raw = item.rawEvent;
  const kind = KINDS[item.type];
  const event = parseObject(raw);
  const id = await sha256Hex(raw);
  if (item.type !== ProcessedToDeviceEventType.Decrypted || !("encryptionInfo" in item))
    return { id, kind, event };
  const info = item.encryptionInfo;
  try {
    const sender = info.sender;
    const device = info.senderDevice;
    const plain = {
      userId: sender.toString(),
      deviceId: device?.toString(),
      curve25519Key: info.senderCurve25519Key,
      verified: info.isSenderVerified(),
    };
    sender.free();
    device?.free();
    return { id, kind, event, sender: plain };
  } finally {
    info.free();
  }
}

function parseObject(raw: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(raw);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}
