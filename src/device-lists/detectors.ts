import type { SeenEvidence } from "./evidence-memo.js";
import { serverNameOf } from "./server-name.js";
import { type DeviceListStaleReason, MAX_NOTE_LENGTH } from "./trust.js";

/**
 * The staleness signs a client can see (MSC2638's discussion; PROTOCOL.md "MSC2638"), each a pure
 * function of what was observed and of the evidence already acted on. A detector returns the
 * reasons to record and the evidence keys behind them; the caller remembers those keys once a
 * resync that began after the evidence has run (`EvidenceMemo`), so the same evidence never
 * triggers twice — a user with a legitimately unsigned old device, or a device whose keys were
 * never published, cannot cause a resync storm.
 */

/** What a detector found: reasons to record, and the evidence keys to remember as acted on. */
export interface Detection {
  reasons: DeviceListStaleReason[];
  evidence: string[];
}

const NOTHING: Detection = { reasons: [], evidence: [] };

/** A device as the crypto layer lists it, reduced to what identifies it. */
export interface ListedDevice {
  deviceId: string;
  curve25519Key: string | undefined;
}

/** Who a message claims or is proven to come from. */
export interface SenderObservation {
  userId: string;
  source: "room_event" | "to_device";
  deviceId?: string | undefined;
  senderKey?: string | undefined;
}

/**
 * (a) A message from a device id or sender key that `listed` does not hold. Either one unknown is
 * enough: Synapse resyncs on an unknown `device_id` or `sender_key` alike
 * (`handlers/federation_event.py` `_resync_device`).
 */
export function detectUnknownSender(
  observation: SenderObservation,
  listed: readonly ListedDevice[],
  seen: SeenEvidence,
): Detection {
  const { deviceId, senderKey } = observation;
  const unknownId = deviceId !== undefined && !listed.some((d) => d.deviceId === deviceId);
  const unknownKey = senderKey !== undefined && !listed.some((d) => d.curve25519Key === senderKey);
  if (!unknownId && !unknownKey) return NOTHING;
  const evidence = [
    ...(unknownId ? [`device:${deviceId}`] : []),
    ...(unknownKey ? [`key:${senderKey}`] : []),
  ];
  if (evidence.every((e) => seen.has(e))) return NOTHING;
  const reason: DeviceListStaleReason = { kind: "unknown_device", source: observation.source };
  if (unknownId) reason.deviceId = deviceId;
  if (unknownKey) reason.senderKey = senderKey;
  return { reasons: [reason], evidence };
}

/** A user's cross-signing state as the crypto layer holds it after a key query. */
export interface SigningSnapshot {
  /** Whether the user has published cross-signing keys (the machine holds an identity). */
  hasCrossSigningKeys: boolean;
  devices: readonly { deviceId: string; crossSignedByOwner: boolean }[];
}

/**
 * (b) Devices with no cross-signing signature while the user has cross-signing keys: a signature
 * uploaded after the list was cached is missing from a stale copy. Fires only for unsigned devices
 * not acted on before, so the same unsigned set never triggers again; the evidence names the whole
 * unsigned set, which the memo keeps in place of the one before.
 */
export function detectUnsignedDevices(snapshot: SigningSnapshot, seen: SeenEvidence): Detection {
  if (!snapshot.hasCrossSigningKeys) return NOTHING;
  const unsigned = snapshot.devices
    .filter((d) => !d.crossSignedByOwner)
    .map((d) => d.deviceId)
    .sort();
  const evidence = unsigned.map((id) => `unsigned:${id}`);
  if (evidence.every((e) => seen.has(e))) return NOTHING;
  return { reasons: [{ kind: "unsigned_devices", deviceIds: unsigned }], evidence };
}

/**
 * (c) The users of every server a `keys/query` answer named in `failures`. Users whose id names no
 * server cannot be matched and are left out.
 */
export function detectQueryFailures(
  users: readonly string[],
  failedServers: readonly string[],
): Map<string, DeviceListStaleReason & { kind: "key_query_failed" }> {
  const failed = new Set(failedServers);
  const out = new Map<string, DeviceListStaleReason & { kind: "key_query_failed" }>();
  if (failed.size === 0) return out;
  for (const userId of users) {
    const server = serverNameOf(userId);
    if (server !== undefined && failed.has(server)) out.set(userId, { kind: "key_query_failed", server });
  }
  return out;
}

/**
 * (d) Every tracked user, once the sync position was lost: the device-list changes announced
 * meanwhile will never be sent (MSC4186), so each list is stale until queried again.
 */
export function detectPositionLost(trackedUsers: readonly string[]): Map<string, DeviceListStaleReason> {
  return new Map(trackedUsers.map((userId) => [userId, { kind: "position_lost" }]));
}

/** (e) The app's report; a note is kept short (it ends up in events and in the app's logs). */
export function detectReport(note: string | undefined): DeviceListStaleReason {
  return note === undefined || note === ""
    ? { kind: "reported" }
    : { kind: "reported", note: cutToCodePoints(note, MAX_NOTE_LENGTH) };
}

/** The first `max` code points of `text`: a cut never splits a surrogate pair (an emoji). */
function cutToCodePoints(text: string, max: number): string {
  let end = 0;
  for (let count = 0; count < max && end < text.length; count++) {
    end += (text.codePointAt(end) ?? 0) > 0xffff ? 2 : 1;
  }
  return text.slice(0, end);
}

/**
 * Whether a resync for these reasons should ask the homeserver to refresh its copy too (MSC2638):
 * every sign but a lost sync position may mean the server's cache is stale; a lost position only
 * means this client missed announcements the server did make.
 */
export function wantsServerRefresh(reasons: readonly DeviceListStaleReason[]): boolean {
  return reasons.some((r) => r.kind !== "position_lost");
}

/** What `client.rooms.decrypt` returned, as far as the detector reads it. */
export type DecryptOutcome =
  | {
      ok: true;
      sender: { userId: string; deviceId: string | undefined; curve25519Key: string; trust: string };
    }
  | { ok: false; reason: string };

/**
 * The sender a room event's decryption points at, when it points at one the list may not hold:
 * crypto-wasm decrypted it from a device it does not know (`unknown_device`), or refused to for
 * that reason (`unknown_sender_device`, under a stricter trust requirement). The event's own
 * `device_id` and `sender_key` are only claims (deprecated since spec v1.3, still sent), which is
 * enough to ask for a resync; the session's proven key wins where there is one.
 */
export function senderOfRoomEvent(event: unknown, outcome: DecryptOutcome): SenderObservation | undefined {
  const claimed = claimsOf(event);
  if (outcome.ok) {
    // A key from a backup or a forward (`authenticity_not_guaranteed`) proves nothing about the
    // list: only crypto-wasm's own "this device is not in the list" counts.
    if (outcome.sender.trust !== "unknown_device") return undefined;
    return {
      userId: outcome.sender.userId,
      source: "room_event",
      deviceId: outcome.sender.deviceId ?? claimed?.deviceId,
      senderKey: outcome.sender.curve25519Key,
    };
  }
  if (outcome.reason !== "unknown_sender_device" || claimed === undefined) return undefined;
  if (claimed.deviceId === undefined && claimed.senderKey === undefined) return undefined;
  return { ...claimed, source: "room_event" };
}

/** A to-device event the crypto layer processed, as far as the detector reads it. */
export interface ProcessedToDevice {
  kind: string;
  sender?: { userId: string; deviceId: string | undefined; curve25519Key: string } | undefined;
}

/**
 * The senders of decrypted to-device events. For `m.room_key` crypto-wasm defers its sender
 * checks and names no device: the Olm session's Curve25519 key is then the evidence.
 */
export function sendersOfToDevice(events: readonly ProcessedToDevice[]): SenderObservation[] {
  const out: SenderObservation[] = [];
  for (const event of events) {
    if (event.kind !== "decrypted" || event.sender === undefined) continue;
    out.push({
      userId: event.sender.userId,
      source: "to_device",
      deviceId: event.sender.deviceId,
      senderKey: event.sender.curve25519Key,
    });
  }
  return out;
}

function claimsOf(event: unknown): { userId: string; deviceId?: string; senderKey?: string } | undefined {
  if (typeof event !== "object" || event === null) return undefined;
  const { sender, content } = event as { sender?: unknown; content?: unknown };
  if (typeof sender !== "string") return undefined;
  const c = (typeof content === "object" && content !== null ? content : {}) as Record<string, unknown>;
  return {
    userId: sender,
    ...(typeof c.device_id === "string" && c.device_id !== "" ? { deviceId: c.device_id } : {}),
    ...(typeof c.sender_key === "string" && c.sender_key !== "" ? { senderKey: c.sender_key } : {}),
  };
}
