import {
  DecryptionErrorCode,
  DecryptionSettings,
  MegolmDecryptionError,
  RoomId,
  TrustRequirement,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import type { E2eeClient } from "matrix-e2ee-devices";
import { encryptedHistory, joinRoom, pendingInvites, type TimelineEvent } from "./rooms.js";

/** Bob's messages as Alice's new device reads them: encrypted events, then what decrypts. */

export interface RoomEvent {
  roomId: string;
  roomName: string;
  event: TimelineEvent;
}

export interface ShownMessage {
  room: string;
  sender: string;
  /** `undefined` when it did not decrypt; `problem` says why. */
  body: string | undefined;
  problem?: string;
}

/** Joins every room the user is invited to and returns their encrypted history. */
export async function joinInvitedRooms(client: E2eeClient): Promise<{ rooms: number; events: RoomEvent[] }> {
  const invites = await pendingInvites(client.http);
  const events: RoomEvent[] = [];
  for (const invite of invites) {
    await joinRoom(client.http, invite.roomId);
    for (const event of await encryptedHistory(client.http, invite.roomId)) {
      events.push({ roomId: invite.roomId, roomName: invite.name, event });
    }
  }
  return { rooms: invites.length, events };
}

export async function decryptAll(client: E2eeClient, events: readonly RoomEvent[]): Promise<ShownMessage[]> {
  const shown: ShownMessage[] = [];
  for (const { roomId, roomName, event } of events) {
    shown.push({ room: roomName, sender: event.sender, ...(await decrypt(client, roomId, event)) });
  }
  return shown;
}

/** The plaintext body, or why there is none ("no room key" is the expected miss before a drain). */
async function decrypt(
  client: E2eeClient,
  roomId: string,
  event: TimelineEvent,
): Promise<{ body: string | undefined; problem?: string }> {
  let decrypted: Awaited<ReturnType<E2eeClient["machine"]["decryptRoomEvent"]>>;
  try {
    decrypted = await client.machine.decryptRoomEvent(
      JSON.stringify({ ...event, room_id: roomId }),
      new RoomId(roomId),
      // Alice has not verified Bob: show the message, as apps do with a grey shield.
      new DecryptionSettings(TrustRequirement.Untrusted),
    );
  } catch (error) {
    if (error instanceof MegolmDecryptionError) {
      const problem = error.code === DecryptionErrorCode.MissingRoomKey ? "no room key" : error.description;
      error.free();
      return { body: undefined, problem };
    }
    return { body: undefined, problem: error instanceof Error ? error.message : String(error) };
  }
  const content = (JSON.parse(decrypted.event) as { content?: { body?: unknown } }).content;
  return { body: typeof content?.body === "string" ? content.body : "(no text)" };
}
