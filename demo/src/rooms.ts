import { z } from "zod";
import { type MatrixCalls, path } from "./matrix-calls.js";

/**
 * The room calls the demo makes itself (the SDK handles devices, not timelines): Bob creates
 * encrypted rooms and sends to them; Alice's new login lists her rooms, joins and reads history.
 * Every answer is validated before use, as the SDK does with its own calls.
 */

const roomIdSchema = z.looseObject({ room_id: z.string() });
const eventIdSchema = z.looseObject({ event_id: z.string() });

const stateEventSchema = z.looseObject({
  type: z.string(),
  state_key: z.string().optional(),
  content: z.looseObject({}),
});
const eventsSchema = z.looseObject({ events: z.array(stateEventSchema) });
const syncSchema = z.looseObject({
  next_batch: z.string(),
  rooms: z
    .looseObject({
      invite: z.record(z.string(), z.looseObject({ invite_state: eventsSchema })).optional(),
      join: z
        .record(
          z.string(),
          z.looseObject({ state: eventsSchema.optional(), timeline: eventsSchema.optional() }),
        )
        .optional(),
    })
    .optional(),
});

export const timelineEventSchema = z.looseObject({
  type: z.string(),
  event_id: z.string(),
  sender: z.string(),
  origin_server_ts: z.number(),
  content: z.looseObject({}),
});
export type TimelineEvent = z.infer<typeof timelineEventSchema>;
const messagesSchema = z.looseObject({ chunk: z.array(timelineEventSchema) });

/** A room of the user's, as the initial sync lists it. */
export interface ListedRoom {
  roomId: string;
  name: string;
  membership: "invite" | "join";
}

/** A private room with Megolm encryption switched on from the start, inviting `invitee`. */
export async function createEncryptedRoom(
  calls: MatrixCalls,
  name: string,
  invitee: string,
): Promise<string> {
  const created = await calls.request({
    method: "POST",
    path: "/_matrix/client/v3/createRoom",
    body: {
      name,
      preset: "private_chat",
      invite: [invitee],
      initial_state: [
        { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
      ],
    },
    schema: roomIdSchema,
  });
  return created.room_id;
}

/** Sends an already encrypted event; the transaction id makes a retry harmless. */
export async function sendEncrypted(
  calls: MatrixCalls,
  roomId: string,
  content: unknown,
  txnId: string,
): Promise<string> {
  const sent = await calls.request({
    method: "PUT",
    path: path`/_matrix/client/v3/rooms/${roomId}/send/m.room.encrypted/${txnId}`,
    body: content,
    schema: eventIdSchema,
  });
  return sent.event_id;
}

/**
 * The rooms the user is in or invited to, from one initial `/sync`, with their names. Joined rooms
 * are listed too: a login that joined some of them before a failure picks up where it stopped.
 */
export async function listRooms(calls: MatrixCalls): Promise<ListedRoom[]> {
  const sync = await calls.request({
    method: "GET",
    path: "/_matrix/client/v3/sync",
    query: { timeout: 0 },
    schema: syncSchema,
  });
  const invited = Object.entries(sync.rooms?.invite ?? {}).map(
    ([roomId, room]): ListedRoom => ({
      roomId,
      name: roomName(room.invite_state.events) ?? roomId,
      membership: "invite",
    }),
  );
  const joined = Object.entries(sync.rooms?.join ?? {}).map(
    ([roomId, room]): ListedRoom => ({
      roomId,
      name: roomName([...(room.state?.events ?? []), ...(room.timeline?.events ?? [])]) ?? roomId,
      membership: "join",
    }),
  );
  return [...joined, ...invited];
}

function roomName(events: readonly z.infer<typeof stateEventSchema>[]): string | undefined {
  const name = events.findLast((e) => e.type === "m.room.name")?.content.name;
  return typeof name === "string" ? name : undefined;
}

export async function joinRoom(calls: MatrixCalls, roomId: string): Promise<void> {
  await calls.request({
    method: "POST",
    path: path`/_matrix/client/v3/join/${roomId}`,
    body: {},
    schema: roomIdSchema,
    // Joining a room one has joined changes nothing, so a lost answer may be asked again.
    repeatable: true,
  });
}

/** The room's latest encrypted events, oldest first. */
export async function encryptedHistory(calls: MatrixCalls, roomId: string): Promise<TimelineEvent[]> {
  const page = await calls.request({
    method: "GET",
    path: path`/_matrix/client/v3/rooms/${roomId}/messages`,
    query: { dir: "b", limit: 50 },
    schema: messagesSchema,
  });
  return page.chunk.filter((e) => e.type === "m.room.encrypted").reverse();
}

/**
 * Sends one crypto-wasm request Bob's machine handed back to the app (a room key share, a key
 * claim) and tells the machine the answer. A to-device PUT carries a transaction id: repeatable.
 */
export async function sendToDevice(
  calls: MatrixCalls,
  eventType: string,
  txnId: string,
  body: string,
): Promise<void> {
  await calls.request({
    method: "PUT",
    path: path`/_matrix/client/v3/sendToDevice/${eventType}/${txnId}`,
    body: JSON.parse(body),
    schema: z.looseObject({}),
  });
}

/** `POST /keys/claim`: not repeated (a replay would use up more one-time keys). Returns the raw answer. */
export async function claimKeys(calls: MatrixCalls, body: string): Promise<unknown> {
  return calls.request({
    method: "POST",
    path: "/_matrix/client/v3/keys/claim",
    body: JSON.parse(body),
    schema: z.looseObject({ one_time_keys: z.record(z.string(), z.unknown()) }),
  });
}
