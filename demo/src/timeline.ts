import {
  DecryptionErrorCode,
  DecryptionSettings,
  MegolmDecryptionError,
  type OlmMachine,
  RoomId,
  TrustRequirement,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { forEachConcurrently } from "./concurrency.js";
import type { MatrixCalls } from "./matrix-calls.js";
import { encryptedHistory, joinRoom, listRooms, type TimelineEvent } from "./rooms.js";

/** Bob's messages as Alice's new device reads them: her rooms, their encrypted events, what decrypts. */

/** How many rooms are joined and read at once: what a client does at start-up, without flooding the server. */
export const ROOM_CONCURRENCY = 8;

/** One of Alice's rooms and how far the new login got with it; kept across failed attempts. */
export interface AliceRoom {
  roomId: string;
  name: string;
  joined: boolean;
  /** Its encrypted events, once read. */
  history?: TimelineEvent[];
}

export interface ShownMessage {
  room: string;
  sender: string;
  /** `undefined` when it did not decrypt; `problem` says why. */
  body: string | undefined;
  problem?: string;
  /** The Megolm session it needs (public: an id, not a key). */
  sessionId?: string;
}

/** Adds the rooms the server lists (invites and joined ones) that `rooms` does not know yet. */
export async function discoverRooms(calls: MatrixCalls, rooms: Map<string, AliceRoom>): Promise<void> {
  for (const listed of await listRooms(calls)) {
    const known = rooms.get(listed.roomId);
    if (known === undefined) {
      rooms.set(listed.roomId, {
        roomId: listed.roomId,
        name: listed.name,
        joined: listed.membership === "join",
      });
    } else if (listed.membership === "join") {
      known.joined = true;
    }
  }
}

/**
 * Joins the rooms not joined yet and reads the history of those not read yet, `ROOM_CONCURRENCY`
 * at a time. Each room's progress is recorded as it happens, so a failure leaves the rest to the
 * next attempt. Returns how many joins this call made.
 */
export async function joinAndRead(
  calls: MatrixCalls,
  rooms: Map<string, AliceRoom>,
  onProgress: (done: number, total: number) => void,
): Promise<number> {
  const all = [...rooms.values()];
  let done = all.filter((r) => r.history !== undefined).length;
  let joins = 0;
  onProgress(done, all.length);
  await forEachConcurrently(
    all.filter((r) => r.history === undefined),
    ROOM_CONCURRENCY,
    async (room) => {
      if (!room.joined) {
        await joinRoom(calls, room.roomId);
        room.joined = true;
        joins++;
      }
      room.history = await encryptedHistory(calls, room.roomId);
      onProgress(++done, all.length);
    },
  );
  return joins;
}

/** Every read message of `rooms`, oldest first per room, decrypted where the machine has the key. */
export async function decryptAll(machine: OlmMachine, rooms: Iterable<AliceRoom>): Promise<ShownMessage[]> {
  const shown: ShownMessage[] = [];
  for (const room of rooms) {
    for (const event of room.history ?? []) {
      shown.push({ room: room.name, sender: event.sender, ...(await decrypt(machine, room.roomId, event)) });
    }
  }
  return shown;
}

/** The plaintext body, or why there is none ("no room key" is the expected miss before a drain). */
async function decrypt(
  machine: OlmMachine,
  roomId: string,
  event: TimelineEvent,
): Promise<{ body: string | undefined; problem?: string; sessionId?: string }> {
  const sessionId = typeof event.content.session_id === "string" ? event.content.session_id : undefined;
  let decrypted: Awaited<ReturnType<OlmMachine["decryptRoomEvent"]>>;
  try {
    decrypted = await machine.decryptRoomEvent(
      JSON.stringify({ ...event, room_id: roomId }),
      new RoomId(roomId),
      // Alice has not verified Bob: show the message, as apps do with a grey shield.
      new DecryptionSettings(TrustRequirement.Untrusted),
    );
  } catch (error) {
    const missing = { body: undefined, ...(sessionId ? { sessionId } : {}) };
    if (error instanceof MegolmDecryptionError) {
      const problem = error.code === DecryptionErrorCode.MissingRoomKey ? "no room key" : error.description;
      error.free();
      return { ...missing, problem };
    }
    return { ...missing, problem: error instanceof Error ? error.message : String(error) };
  }
  const content = (JSON.parse(decrypted.event) as { content?: { body?: unknown } }).content;
  return { body: typeof content?.body === "string" ? content.body : "(no text)" };
}
