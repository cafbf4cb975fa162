import { RoomError } from "./room-errors.js";

/** The only room algorithm this SDK encrypts with (Client-Server spec, "Messaging algorithms"). */
export const MEGOLM_ALGORITHM = "m.megolm.v1.aes-sha2";

/** The spec's defaults for `m.room.encryption`: rotate weekly or after 100 messages. */
const DEFAULT_ROTATION_PERIOD_MS = 604_800_000;
const DEFAULT_ROTATION_PERIOD_MESSAGES = 100;

export type HistoryVisibility = "invited" | "joined" | "shared" | "world_readable";

/** How a room's messages are encrypted, from its `m.room.encryption` and `m.room.history_visibility`. */
export interface RoomEncryption {
  algorithm: typeof MEGOLM_ALGORITHM;
  /** A session is replaced after this long, ms. */
  rotationPeriodMs: number;
  /** A session is replaced after this many messages. */
  rotationPeriodMessages: number;
  historyVisibility: HistoryVisibility;
}

const VISIBILITIES: ReadonlySet<string> = new Set(["invited", "joined", "shared", "world_readable"]);

/**
 * Reads the state contents. An absent `m.room.encryption` is `room_not_encrypted`; an algorithm
 * other than Megolm is `unsupported_algorithm` (sending in clear, or with a guessed algorithm,
 * would be worse than not sending). Out-of-range rotation values fall back to the defaults, as
 * other clients do; an unknown history visibility is read as `shared`, the spec's default.
 */
export function roomEncryptionFrom(
  roomId: string,
  encryption: unknown,
  historyVisibility: unknown,
): RoomEncryption {
  if (typeof encryption !== "object" || encryption === null) {
    throw new RoomError("room_not_encrypted", "the room has no m.room.encryption state", {
      details: { roomId },
    });
  }
  const content = encryption as Record<string, unknown>;
  if (content.algorithm !== MEGOLM_ALGORITHM) {
    throw new RoomError("unsupported_algorithm", "the room's encryption algorithm is not Megolm", {
      details: {
        roomId,
        algorithm: typeof content.algorithm === "string" ? content.algorithm.slice(0, 100) : null,
      },
    });
  }
  const visibility = (historyVisibility as { history_visibility?: unknown } | null | undefined)
    ?.history_visibility;
  return {
    algorithm: MEGOLM_ALGORITHM,
    rotationPeriodMs: positiveInteger(content.rotation_period_ms) ?? DEFAULT_ROTATION_PERIOD_MS,
    rotationPeriodMessages: positiveInteger(content.rotation_period_msgs) ?? DEFAULT_ROTATION_PERIOD_MESSAGES,
    historyVisibility:
      typeof visibility === "string" && VISIBILITIES.has(visibility)
        ? (visibility as HistoryVisibility)
        : "shared",
  };
}

/**
 * Who must get the room key: joined members, and invited ones unless history is visible to joined
 * members only (an invited user may read from their invite on; spec, "History visibility").
 */
export function encryptionTargets(
  members: ReadonlyMap<string, string>,
  historyVisibility: HistoryVisibility,
): string[] {
  const out: string[] = [];
  for (const [userId, membership] of members) {
    if (membership === "join" || (membership === "invite" && historyVisibility !== "joined"))
      out.push(userId);
  }
  return out.sort();
}

function positiveInteger(value: unknown): number | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0 ? value : undefined;
}
