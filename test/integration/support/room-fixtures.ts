import type { RunningMockServer } from "../../../src/testing/index.js";
import type { Account } from "./foundation-fixtures.js";
import { matrixCall } from "./sync-fixtures.js";

/**
 * Rooms for the room-message tests: created over the socket as an app would, with Megolm
 * encryption switched on in the initial state, and the events read back from `/messages`.
 */

export const MEGOLM = { algorithm: "m.megolm.v1.aes-sha2" };

/** `owner` creates an encrypted room and every guest joins; returns the room id. */
export async function encryptedRoom(
  server: RunningMockServer,
  owner: Account,
  guests: readonly Account[],
  options: { encryption?: Record<string, unknown> | null; historyVisibility?: string } = {},
): Promise<string> {
  const initialState: unknown[] = [];
  if (options.encryption !== null) {
    initialState.push({ type: "m.room.encryption", state_key: "", content: options.encryption ?? MEGOLM });
  }
  if (options.historyVisibility !== undefined) {
    initialState.push({
      type: "m.room.history_visibility",
      state_key: "",
      content: { history_visibility: options.historyVisibility },
    });
  }
  const created = await matrixCall(server.url, owner, "POST", "/_matrix/client/v3/createRoom", {
    preset: "private_chat",
    invite: guests.map((g) => g.userId),
    initial_state: initialState,
  });
  const roomId = String(created.room_id);
  for (const guest of guests) {
    await matrixCall(server.url, guest, "POST", `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {});
  }
  return roomId;
}

/** The room's last 1,000 events by id, as a member reads them from `/messages`. */
export async function roomEvents(
  server: RunningMockServer,
  reader: Account,
  roomId: string,
): Promise<Map<string, Record<string, unknown>>> {
  const page = await matrixCall(
    server.url,
    reader,
    "GET",
    `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=1000`,
  );
  return new Map(
    (page.chunk as Record<string, unknown>[]).map((e) => [String(e.event_id), { ...e, room_id: roomId }]),
  );
}

/** The room event with `eventId`, as a member reads it from `/messages`. */
export async function roomEvent(
  server: RunningMockServer,
  reader: Account,
  roomId: string,
  eventId: string,
): Promise<Record<string, unknown>> {
  const found = (await roomEvents(server, reader, roomId)).get(eventId);
  if (!found) throw new Error(`${eventId} is not in ${roomId}`);
  return found;
}
