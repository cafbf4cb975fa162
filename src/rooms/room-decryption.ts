import {
  type DecryptedRoomEvent,
  DecryptionErrorCode,
  DecryptionSettings,
  DeviceId,
  type OlmMachine,
  RoomId,
  type RoomKeyInfo,
  type RoomKeyWithheldInfo,
  ShieldColor,
  type ShieldState,
  ShieldStateCode,
  TrustRequirement,
  UserId,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { z } from "zod";
import { AbortError } from "../errors/abort-error.js";
import { errorSummary } from "../errors/error-summary.js";
import { type Logger, prefixedLogger } from "../logger.js";
import { MEGOLM_ALGORITHM } from "./room-encryption.js";
import { RoomError } from "./room-errors.js";

/** A room event as the server sent it, encrypted (Client-Server spec, `m.room.encrypted`). */
export interface EncryptedRoomEvent {
  event_id: string;
  room_id: string;
  sender: string;
  type: string;
  content: Record<string, unknown>;
  /** Part of every client event (Client-Server spec, "Room Events"); crypto-wasm refuses one without it. */
  origin_server_ts: number;
  [k: string]: unknown;
}

/** Why an event did not decrypt. */
export type RoomDecryptFailure =
  /** We have no room key for the event's session (yet). */
  | "missing_room_key"
  /** The sender told us (`m.room_key.withheld`) they do not share the key with this device; `withheldCode` says why. */
  | "withheld"
  /** We have the session, but only from a later message index on. */
  | "unknown_message_index"
  /** The sending device is unknown and the trust requirement asks for a known one. */
  | "unknown_sender_device"
  /** The sending device is not cross-signed by its owner and the trust requirement asks for it. */
  | "unsigned_sender_device"
  /** The sender was verified and their identity changed since (a verification violation). */
  | "sender_identity_changed"
  /** The event's `sender` is not the owner of the device that created the session. */
  | "mismatched_sender"
  /** The room key's claimed identity keys do not match the Olm session it came through. */
  | "mismatched_identity_keys"
  /** The sending device is flagged dehydrated, and a dehydrated device never sends (MSC3814). */
  | "from_dehydrated_device"
  /** Not a Megolm `m.room.encrypted` event, or its plaintext is not an event. */
  | "bad_event"
  /** Any other failure of the crypto layer (a corrupt ciphertext, a failed MAC check, …). */
  | "unable_to_decrypt";

/**
 * What we know of the sender's authenticity: crypto-wasm's verification level, read off its two
 * shield states (rust-sdk `VerificationState::to_shield_state_lax` / `_strict`). `verified` only for
 * a device cross-signed by a user we verified.
 */
export type RoomSenderTrust =
  /** Sent by a device cross-signed by a user we verified. */
  | "verified"
  /** Sent by a device cross-signed by its owner, whom we have not verified. */
  | "unverified"
  /** The device that created the session is not in the sender's device list. */
  | "unknown_device"
  /** The sender's device is not cross-signed by its owner. */
  | "unsigned_device"
  /** The sender was verified and changed their identity since. */
  | "identity_changed"
  /** The key came from a source that cannot prove who created it (a backup, a key export, a forward). */
  | "authenticity_not_guaranteed";

/** The shield an app shows next to the event (crypto-wasm's lax shield, as Element shows it). */
export interface RoomEventShield {
  color: "red" | "grey" | "none";
  /** Why there is a shield; `undefined` with `none`. */
  code:
    | "authenticity_not_guaranteed"
    | "unknown_device"
    | "unsigned_device"
    | "unverified_identity"
    | "verification_violation"
    | "mismatched_sender"
    | "unknown"
    | undefined;
  /** crypto-wasm's English tooltip text. */
  message: string | undefined;
}

/** Who sent a decrypted event, as the Megolm session proves it. */
export interface RoomEventSender {
  userId: string;
  /** `undefined` when the device that created the session is not known (`trust: unknown_device`, …). */
  deviceId: string | undefined;
  /** The Curve25519 key of the device that created the session. */
  curve25519Key: string;
  trust: RoomSenderTrust;
  shield: RoomEventShield;
}

export interface RoomDecryptSuccess {
  ok: true;
  /** The cleartext event. */
  event: { type: string; content: Record<string, unknown> };
  sender: RoomEventSender;
}

export interface RoomDecryptError {
  ok: false;
  reason: RoomDecryptFailure;
  /** Short and fixed per reason: never key material, ciphertext or the crypto layer's own text. */
  message: string;
  /** With `withheld`: the `m.room_key.withheld` code (`m.unverified`, `m.blacklisted`, …). */
  withheldCode?: string;
  /** true: the event is kept and retried when its key arrives (a `rooms.decrypted` event then). */
  waiting: boolean;
}

export type RoomDecryptResult = RoomDecryptSuccess | RoomDecryptError;

/** How much the sending device must be trusted for the event to be decrypted at all. */
export type RoomDecryptTrust = "untrusted" | "cross_signed_or_legacy" | "cross_signed";

export interface RoomDecryptOptions {
  /** Default `untrusted`: decrypt from every device and report the trust in `sender`. */
  trust?: RoomDecryptTrust | undefined;
}

/** A waiting event decrypted once its key arrived: its result, as `decrypt` would give it now. */
export interface RoomEventDecryptedPayload {
  roomId: string;
  eventId: string;
  result: RoomDecryptSuccess;
}

/** The sender withholds the key of waiting events (`m.room_key.withheld`); they stay waiting. */
export interface RoomKeyWithheldPayload {
  roomId: string;
  sessionId: string;
  sender: string;
  code: string;
  eventIds: string[];
}

/** What the decryptor emits (the `rooms.*` events it owns). */
export interface RoomDecryptionEvents {
  decrypted: RoomEventDecryptedPayload;
  keyWithheld: RoomKeyWithheldPayload;
}

/** The slice of the machine the decryptor uses (`OlmMachine` fits). */
export type RoomDecryptionMachine = Pick<
  OlmMachine,
  "decryptRoomEvent" | "getDevice" | "registerRoomKeyUpdatedCallback" | "registerRoomKeysWithheldCallback"
>;

export interface RoomDecryptorParts {
  machine: RoomDecryptionMachine;
  logger: Logger;
  emit: <K extends keyof RoomDecryptionEvents & string>(event: K, payload: RoomDecryptionEvents[K]) => void;
  /** Events kept for a late key, at most; the oldest goes first. Default 1000. */
  maxWaiting?: number | undefined;
  /** The owner's lifetime: once it fires, the decryptor is closed and `decrypt` rejects with its reason. */
  signal?: AbortSignal | undefined;
}

const DEFAULT_MAX_WAITING = 1000;

/** Matrix identifiers are at most 255 bytes (Client-Server spec, "Identifier Grammar"). */
const identifier = (sigil: string) =>
  z
    .string()
    .min(2)
    .max(255)
    .refine((value) => value.startsWith(sigil));

/** Unpadded standard base64 (Client-Server spec, "Unpadded Base64"); Megolm ciphertext is one. */
const base64 = z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/);

/**
 * The event crypto-wasm would accept, checked first so a malformed one is `bad_event` rather than
 * an exception or the library's parse error. Loose: unknown fields (`unsigned`, …) pass through.
 * Megolm only: Olm (`m.olm.v1.curve25519-aes-sha2`) encrypts to-device messages, never room events
 * (Client-Server spec, "Messaging algorithms"). `sender_key` and `device_id` are deprecated
 * (spec v1.3) but still sent; when present they must be strings.
 */
const encryptedEventSchema = z.looseObject({
  type: z.literal("m.room.encrypted"),
  event_id: identifier("$"),
  room_id: identifier("!"),
  sender: identifier("@"),
  origin_server_ts: z.number().int().nonnegative(),
  content: z.looseObject({
    algorithm: z.literal(MEGOLM_ALGORITHM),
    ciphertext: base64,
    session_id: z.string().min(1),
    sender_key: z.string().optional(),
    device_id: z.string().optional(),
  }),
});

const cleartextSchema = z.looseObject({
  type: z.string().min(1),
  content: z.record(z.string(), z.unknown()),
});

const TRUST: Record<RoomDecryptTrust, TrustRequirement> = {
  untrusted: TrustRequirement.Untrusted,
  cross_signed_or_legacy: TrustRequirement.CrossSignedOrLegacy,
  cross_signed: TrustRequirement.CrossSigned,
};

/**
 * `MegolmDecryptionError.code` by enum name, never by number: the 18.3.1 source numbered
 * `MismatchedIdentityKeys` 1, 18.9.0 numbers it 2. `waiting` says whether a key that fixes it
 * can still come:
 * - missing key and unknown index: a to-device `m.room_key`, a forward, a backup or a rehydrated
 *   device may bring the (earlier) session;
 * - withheld: waiting too. An `m.room_key.withheld` says only that the sender's device does not
 *   send the key (spec, "Reporting that decryption keys are withheld"); the session can still
 *   come from a key backup, a forward by another of our devices or an export, and `m.no_olm` ends
 *   once an Olm session exists. (A sender lifting `m.blacklisted` or `m.unverified` does not help
 *   these events: rust-sdk shares a new session then, for later messages);
 * - the trust and identity failures are facts about the sender, not about a key: no key fixes them.
 */
const FAILURES: Record<
  keyof typeof DecryptionErrorCode,
  { reason: RoomDecryptFailure; message: string; waiting: boolean }
> = {
  MissingRoomKey: { reason: "missing_room_key", message: "the room key is not known yet", waiting: true },
  UnknownMessageIndex: {
    reason: "unknown_message_index",
    message: "the room key is known only from a later message on",
    waiting: true,
  },
  MismatchedIdentityKeys: {
    reason: "mismatched_identity_keys",
    message: "the room key's identity keys do not match the device it came from",
    waiting: false,
  },
  UnknownSenderDevice: {
    reason: "unknown_sender_device",
    message: "the sending device is not known and the trust requirement asks for it",
    waiting: false,
  },
  UnsignedSenderDevice: {
    reason: "unsigned_sender_device",
    message: "the sending device is not cross-signed by its owner",
    waiting: false,
  },
  SenderIdentityVerificationViolation: {
    reason: "sender_identity_changed",
    message: "the sender was verified and their identity changed since",
    waiting: false,
  },
  UnableToDecrypt: {
    reason: "unable_to_decrypt",
    message: "the event could not be decrypted",
    waiting: false,
  },
  MismatchedSender: {
    reason: "mismatched_sender",
    message: "the event's sender is not the owner of the device that created the session",
    waiting: false,
  },
};

const SHIELD_COLORS: Record<ShieldColor, RoomEventShield["color"]> = {
  [ShieldColor.Red]: "red",
  [ShieldColor.Grey]: "grey",
  [ShieldColor.None]: "none",
};

const SHIELD_CODES: Record<ShieldStateCode, Exclude<RoomEventShield["code"], undefined>> = {
  [ShieldStateCode.AuthenticityNotGuaranteed]: "authenticity_not_guaranteed",
  [ShieldStateCode.UnknownDevice]: "unknown_device",
  [ShieldStateCode.UnsignedDevice]: "unsigned_device",
  [ShieldStateCode.UnverifiedIdentity]: "unverified_identity",
  [ShieldStateCode.VerificationViolation]: "verification_violation",
  [ShieldStateCode.MismatchedSender]: "mismatched_sender",
};

/**
 * The verification level from the shields. The lax shield names every level but two: an
 * unverified identity and a verified one both show none. The strict shield tells those apart (no
 * code only when verified) but folds the unsigned device and the identity change into
 * `UnverifiedIdentity`. So the lax code decides, and without one, the strict.
 */
function trustOf(lax: ShieldStateCode | undefined, strict: ShieldStateCode | undefined): RoomSenderTrust {
  switch (lax) {
    case ShieldStateCode.AuthenticityNotGuaranteed:
      return "authenticity_not_guaranteed";
    case ShieldStateCode.UnknownDevice:
      return "unknown_device";
    case ShieldStateCode.UnsignedDevice:
      return "unsigned_device";
    case ShieldStateCode.VerificationViolation:
      return "identity_changed";
    case ShieldStateCode.UnverifiedIdentity:
      return "unverified";
    case undefined:
      return strict === undefined ? "verified" : "unverified";
    default:
      // A code newer than this mapping: the least trust short of an error.
      return "authenticity_not_guaranteed";
  }
}

interface ValidEvent {
  roomId: string;
  eventId: string;
  sessionId: string;
  /** The validated event, as crypto-wasm gets it. */
  json: string;
}

interface WaitingEvent extends ValidEvent {
  trust: RoomDecryptTrust;
}

/** A decrypt as far as the crypto layer goes; the dehydration check comes after it. */
type Attempt = RoomDecryptResult | { ok: "check"; success: RoomDecryptSuccess; deviceId: string };

const badEvent = (message: string): RoomDecryptError => ({
  ok: false,
  reason: "bad_event",
  message,
  waiting: false,
});

/**
 * Decrypts room events (`m.room.encrypted`, Megolm) into plain data, with a reason for every
 * failure, and keeps those that wait for their key to retry them when it arrives.
 *
 * Waiting events are kept per room and session, at most `maxWaiting` (oldest dropped first). The
 * machine's room-key callback retries them; `retryWaiting` does so for keys imported by a path
 * that does not fire it. A retry that succeeds emits `decrypted` and forgets the event; one that
 * fails for good (the key came but the sender is not trusted enough, say) forgets it silently —
 * the app still holds the failure `decrypt` gave it. An `m.room_key.withheld` for a waiting
 * session emits `keyWithheld` and keeps its events waiting.
 *
 * All decrypts of one event run one after the other, retries in one queue; nothing reaches the
 * machine's callbacks but a resolved promise.
 */
export class RoomDecryptor {
  readonly #machine: RoomDecryptionMachine;
  readonly #logger: Logger;
  readonly #emit: RoomDecryptorParts["emit"];
  readonly #maxWaiting: number;
  readonly #signal: AbortSignal | undefined;
  /** One per trust level, borrowed by every decrypt (crypto-wasm does not consume it). */
  readonly #settings = new Map<RoomDecryptTrust, DecryptionSettings>();
  /** By event (room + event id), oldest first: `Map` keeps insertion order. */
  readonly #waiting = new Map<string, WaitingEvent>();
  /** Event keys by room + session id. */
  readonly #bySession = new Map<string, Set<string>>();
  /** The tail of each event's chain of decrypts. */
  readonly #locks = new Map<string, Promise<void>>();
  #retries: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(parts: RoomDecryptorParts) {
    this.#machine = parts.machine;
    this.#logger = prefixedLogger(parts.logger, "[room decryption]");
    this.#emit = parts.emit;
    this.#signal = parts.signal;
    const max = parts.maxWaiting ?? DEFAULT_MAX_WAITING;
    if (!Number.isSafeInteger(max) || max < 0) {
      throw new RoomError("invalid_argument", "maxWaiting must be a non-negative integer", {
        details: { maxWaiting: max },
      });
    }
    this.#maxWaiting = max;
    parts.signal?.addEventListener("abort", () => this.close(), { once: true });
    // The callbacks return at once: the machine feeds them from a bounded broadcast channel, and
    // one that lags loses updates (rust-sdk `room_keys_received_stream` skips lagged items). The
    // retries run on their own queue instead.
    this.#machine.registerRoomKeyUpdatedCallback(async (infos) => {
      try {
        this.#onRoomKeys(infos);
      } catch (error) {
        this.#logger.warn("handling room key updates failed", errorSummary(error));
      }
    });
    this.#machine.registerRoomKeysWithheldCallback(async (infos) => {
      try {
        this.#onWithheld(infos);
      } catch (error) {
        this.#logger.warn("handling withheld room keys failed", errorSummary(error));
      }
    });
  }

  /** How many events wait for their key. */
  get waitingCount(): number {
    return this.#waiting.size;
  }

  /**
   * Decrypts one event. Never rejects for the event, whatever it is (`bad_event`); rejects only
   * for a bad `options.trust` (`RoomError` `invalid_argument`) and after `close()`.
   */
  async decrypt(event: unknown, options: RoomDecryptOptions = {}): Promise<RoomDecryptResult> {
    this.#assertOpen();
    const trust = options.trust ?? "untrusted";
    if (!Object.hasOwn(TRUST, trust)) {
      throw new RoomError(
        "invalid_argument",
        "trust must be untrusted, cross_signed_or_legacy or cross_signed",
        {
          details: { trust: String(trust).slice(0, 50) },
        },
      );
    }
    const valid = validate(event);
    if ("ok" in valid) return valid;
    const key = eventKey(valid.roomId, valid.eventId);
    return this.#exclusive(key, async () => {
      this.#assertOpen();
      // Kept *before* the attempt: a key arriving while it runs finds the event and retries it
      // after this attempt (the lock orders them), rather than missing it.
      this.#keep({ ...valid, trust });
      const result = await this.#attempt(valid, trust);
      const waits = result.ok === false && result.waiting;
      if (!waits) this.#forget(key);
      // Trimmed only now, so an event that decrypts never pushes out one that waits.
      else this.#trim();
      if (waits && !this.#waiting.has(key)) {
        // Closed meanwhile, or evicted as the oldest while the attempt ran: nothing will retry it.
        return { ...result, waiting: false };
      }
      return result;
    });
  }

  /**
   * Retries the waiting events of these sessions (all of them without an argument). For room keys
   * imported by a path that does not fire the machine's room-key callback. Never rejects.
   */
  retryWaiting(sessionIds?: readonly string[]): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const wanted = sessionIds === undefined ? undefined : new Set(sessionIds);
    return this.#enqueue(() =>
      [...this.#waiting.values()]
        .filter((e) => wanted === undefined || wanted.has(e.sessionId))
        .map((e) => eventKey(e.roomId, e.eventId)),
    );
  }

  /** Drops every waiting event; later callbacks of the machine do nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiting.clear();
    this.#bySession.clear();
    for (const settings of this.#settings.values()) settings.free();
    this.#settings.clear();
  }

  #assertOpen(): void {
    if (!this.#closed) return;
    throw this.#signal?.aborted ? this.#signal.reason : new AbortError("The room decryptor");
  }

  #onRoomKeys(infos: RoomKeyInfo[]): void {
    const sessions = new Set<string>();
    for (const info of infos) {
      try {
        if (!this.#closed) {
          const roomId = info.roomId;
          sessions.add(sessionKey(roomId.toString(), info.sessionId));
          roomId.free();
        }
      } finally {
        info.free();
      }
    }
    if (this.#closed || sessions.size === 0) return;
    void this.#enqueue(() => [...sessions].flatMap((s) => [...(this.#bySession.get(s) ?? [])]));
  }

  #onWithheld(infos: RoomKeyWithheldInfo[]): void {
    const withheld: RoomKeyWithheldPayload[] = [];
    for (const info of infos) {
      try {
        if (this.#closed) continue;
        const roomId = info.roomId;
        const sender = info.sender;
        const payload = {
          roomId: roomId.toString(),
          sessionId: info.sessionId,
          sender: sender.toString(),
          code: info.withheldCode,
        };
        roomId.free();
        sender.free();
        const keys = this.#bySession.get(sessionKey(payload.roomId, payload.sessionId));
        if (keys === undefined) continue;
        const eventIds = [...keys].flatMap((k) => this.#waiting.get(k)?.eventId ?? []);
        if (eventIds.length > 0) withheld.push({ ...payload, eventIds });
      } finally {
        info.free();
      }
    }
    for (const payload of withheld) this.#safeEmit("keyWithheld", payload);
  }

  /** Queues a retry of the events `pick` names when the queue gets to it. Never rejects. */
  #enqueue(pick: () => string[]): Promise<void> {
    const run = this.#retries.then(async () => {
      if (this.#closed) return;
      for (const key of pick()) {
        if (this.#closed) return;
        await this.#retry(key);
      }
    });
    this.#retries = run.catch((error: unknown) => {
      this.#logger.warn("retrying room events failed", errorSummary(error));
    });
    return this.#retries;
  }

  async #retry(key: string): Promise<void> {
    await this.#exclusive(key, async () => {
      // Read again under the lock: a decrypt by the app may have settled it meanwhile.
      const entry = this.#waiting.get(key);
      if (entry === undefined || this.#closed) return;
      const result = await this.#attempt(entry, entry.trust);
      if (result.ok === false && result.waiting) return;
      this.#forget(key);
      if (result.ok) {
        if (!this.#closed) {
          this.#safeEmit("decrypted", { roomId: entry.roomId, eventId: entry.eventId, result });
        }
      } else {
        this.#logger.debug("a waiting event failed for good once its key came", { reason: result.reason });
      }
    });
  }

  async #attempt(event: ValidEvent, trust: RoomDecryptTrust): Promise<RoomDecryptResult> {
    try {
      const attempt = await this.#decryptOnce(event, trust);
      if (attempt.ok !== "check") return attempt;
      // MSC3814, "Security considerations": a dehydrated device never sends, so anything that
      // claims to come from one is suspect — its owner's client would not have made it.
      if (await this.#isDehydrated(attempt.success.sender.userId, attempt.deviceId)) {
        return {
          ok: false,
          reason: "from_dehydrated_device",
          message: "the sending device is a dehydrated device, which never sends",
          waiting: false,
        };
      }
      return attempt.success;
    } catch (error) {
      // Anything but a `MegolmDecryptionError` (caught inside): logged by name only, since a
      // parse error's text may quote the event.
      this.#logger.warn("decrypting a room event failed", { name: (error as { name?: unknown })?.name });
      return {
        ok: false,
        reason: "unable_to_decrypt",
        message: FAILURES.UnableToDecrypt.message,
        waiting: false,
      };
    }
  }

  async #decryptOnce(event: ValidEvent, trust: RoomDecryptTrust): Promise<Attempt> {
    const roomId = new RoomId(event.roomId);
    let decrypted: DecryptedRoomEvent;
    try {
      decrypted = await this.#machine.decryptRoomEvent(event.json, roomId, this.#settingsFor(trust));
    } catch (error) {
      return failureOf(error);
    } finally {
      roomId.free();
    }
    try {
      return fromDecrypted(decrypted);
    } finally {
      decrypted.free();
    }
  }

  async #isDehydrated(userId: string, deviceId: string): Promise<boolean> {
    const user = new UserId(userId);
    const id = new DeviceId(deviceId);
    try {
      const device = await this.#machine.getDevice(user, id);
      if (device === undefined) return false;
      try {
        return device.isDehydrated;
      } finally {
        device.free();
      }
    } finally {
      user.free();
      id.free();
    }
  }

  #settingsFor(trust: RoomDecryptTrust): DecryptionSettings {
    let settings = this.#settings.get(trust);
    if (settings === undefined) {
      settings = new DecryptionSettings(TRUST[trust]);
      this.#settings.set(trust, settings);
    }
    return settings;
  }

  #keep(entry: WaitingEvent): void {
    if (this.#closed || this.#maxWaiting === 0) return;
    const key = eventKey(entry.roomId, entry.eventId);
    // Re-inserted, so a retried event counts as the newest.
    this.#forget(key);
    this.#waiting.set(key, entry);
    const session = sessionKey(entry.roomId, entry.sessionId);
    let keys = this.#bySession.get(session);
    if (keys === undefined) {
      keys = new Set();
      this.#bySession.set(session, keys);
    }
    keys.add(key);
  }

  /** Drops the oldest waiting events beyond `maxWaiting`. */
  #trim(): void {
    while (this.#waiting.size > this.#maxWaiting) {
      const oldest = this.#waiting.keys().next().value as string;
      this.#forget(oldest);
    }
  }

  #forget(key: string): void {
    const entry = this.#waiting.get(key);
    if (entry === undefined) return;
    this.#waiting.delete(key);
    const session = sessionKey(entry.roomId, entry.sessionId);
    const keys = this.#bySession.get(session);
    keys?.delete(key);
    if (keys?.size === 0) this.#bySession.delete(session);
  }

  /** Runs `work` after every earlier call for the same key has settled. */
  async #exclusive<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(key);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous === undefined ? mine : previous.then(() => mine);
    this.#locks.set(key, tail);
    try {
      if (previous !== undefined) await previous;
      return await work();
    } finally {
      release();
      if (this.#locks.get(key) === tail) this.#locks.delete(key);
    }
  }

  #safeEmit<K extends keyof RoomDecryptionEvents & string>(event: K, payload: RoomDecryptionEvents[K]): void {
    try {
      this.#emit(event, payload);
    } catch (error) {
      this.#logger.warn(`a ${event} listener failed`, errorSummary(error));
    }
  }
}

function eventKey(roomId: string, eventId: string): string {
  return `${roomId}\u0000${eventId}`;
}

function sessionKey(roomId: string, sessionId: string): string {
  return `${roomId}\u0000${sessionId}`;
}

/** The event as crypto-wasm will get it, or `bad_event` naming the first wrong field (never its value). */
function validate(event: unknown): ValidEvent | RoomDecryptError {
  const parsed = encryptedEventSchema.safeParse(event);
  if (!parsed.success) {
    const path = parsed.error.issues[0]?.path.map(String).join(".") || "event";
    return badEvent(`not a Megolm m.room.encrypted event (${path})`);
  }
  let json: string;
  try {
    json = JSON.stringify(parsed.data);
  } catch {
    // A cycle, or a BigInt, among the event's other fields.
    return badEvent("the event is not JSON");
  }
  // crypto-wasm parses ids more strictly than their sigils (`@localpart:server`, …).
  try {
    new UserId(parsed.data.sender).free();
    new RoomId(parsed.data.room_id).free();
  } catch {
    return badEvent("the event's sender or room id is not a valid Matrix id");
  }
  return {
    roomId: parsed.data.room_id,
    eventId: parsed.data.event_id,
    sessionId: parsed.data.content.session_id,
    json,
  };
}

/** The failure a `MegolmDecryptionError` stands for; freed here. Anything else is rethrown. */
function failureOf(error: unknown): RoomDecryptError {
  if (!isMegolmError(error)) throw error;
  try {
    const name = DecryptionErrorCode[error.code] as keyof typeof DecryptionErrorCode | undefined;
    const known = name === undefined ? FAILURES.UnableToDecrypt : FAILURES[name];
    const withheldCode = error.withheldCode;
    if (name === "MissingRoomKey" && typeof withheldCode === "string") {
      return {
        ok: false,
        reason: "withheld",
        message: "the sender withholds the room key from this device",
        withheldCode,
        waiting: true,
      };
    }
    return { ok: false, ...known };
  } finally {
    error.free?.();
  }
}

interface MegolmErrorShape {
  code: DecryptionErrorCode;
  withheldCode?: string | undefined;
  free?: () => void;
}

/**
 * By shape rather than `instanceof`: a second copy of crypto-wasm (two bundles) has its own
 * class, and its errors are as good.
 */
function isMegolmError(error: unknown): error is MegolmErrorShape {
  return (
    typeof error === "object" &&
    error !== null &&
    typeof (error as { code?: unknown }).code === "number" &&
    typeof (error as { description?: unknown }).description === "string"
  );
}

/** Plain data out of the decrypted event (which the caller frees). */
function fromDecrypted(decrypted: DecryptedRoomEvent): Attempt {
  const sender = decrypted.sender;
  const device = decrypted.senderDevice;
  const userId = sender.toString();
  const deviceId = device?.toString();
  sender.free();
  device?.free();
  const strict = decrypted.shieldState(true);
  const lax = decrypted.shieldState(false);
  const strictCode = strict.code;
  const laxCode = lax.code;
  const shield = shieldOf(lax);
  strict.free();
  lax.free();
  // crypto-wasm decrypts such an event under `untrusted` with a red shield. The only sender it
  // could be reported under is the one the event claims, which the session proves false, so it
  // fails like it does under the stricter requirements (`MismatchedSender`).
  if (strictCode === ShieldStateCode.MismatchedSender || laxCode === ShieldStateCode.MismatchedSender)
    return { ok: false, ...FAILURES.MismatchedSender };
  let cleartext: z.infer<typeof cleartextSchema>;
  try {
    const parsed = cleartextSchema.safeParse(JSON.parse(decrypted.event));
    if (!parsed.success) return badEvent("the decrypted payload is not an event");
    cleartext = parsed.data;
  } catch {
    return badEvent("the decrypted payload is not JSON");
  }
  const success: RoomDecryptSuccess = {
    ok: true,
    event: { type: cleartext.type, content: cleartext.content },
    sender: {
      userId,
      deviceId,
      curve25519Key: decrypted.senderCurve25519Key,
      trust: trustOf(laxCode, strictCode),
      shield,
    },
  };
  return deviceId === undefined ? success : { ok: "check", success, deviceId };
}

function shieldOf(state: ShieldState): RoomEventShield {
  const code = state.code;
  return {
    color: SHIELD_COLORS[state.color] ?? "red",
    code: code === undefined ? undefined : (SHIELD_CODES[code] ?? "unknown"),
    message: state.message,
  };
}
