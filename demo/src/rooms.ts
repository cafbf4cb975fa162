import { type MatrixHttp, matrixPath } from "matrix-e2ee-devices";
import { z } from "zod";

/**
 * The few room calls the demo makes itself (the SDK handles devices, not timelines): Bob creates
 * encrypted rooms and sends to them; Alice's new login finds her invites, joins and reads history.
 * Every answer is validated before use, as the SDK does with its own calls.
 */

const roomIdSchema = z.looseObject({ room_id: z.string() });
const eventIdSchema = z.looseObject({ event_id: z.string() });

const strippedStateSchema = z.looseObject({
  type: z.string(),
  state_key: z.string().optional(),
  content: z.looseObject({}),
});
const syncSchema = z.looseObject({
  next_batch: z.string(),
  rooms: z
    .looseObject({
      invite: z
        .record(
          z.string(),
          z.looseObject({ invite_state: z.looseObject({ events: z.array(strippedStateSchema) }) }),
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

export interface Invite {
  roomId: string;
  name: string;
}

/** A private room with Megolm encryption switched on from the start, inviting `invitee`. */
export async function createEncryptedRoom(http: MatrixHttp, name: string, invitee: string): Promise<string> {
  const created = await http.request({
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

/** Sends an already encrypted event; the transaction id makes a retry harmless (MSC3970). */
export async function sendEncrypted(
  http: MatrixHttp,
  roomId: string,
  content: unknown,
  txnId: string,
): Promise<string> {
  const sent = await http.request({
    method: "PUT",
    path: matrixPath`/_matrix/client/v3/rooms/${roomId}/send/m.room.encrypted/${txnId}`,
    body: content,
    schema: eventIdSchema,
    retry: "safe",
  });
  return sent.event_id;
}

/** The rooms the user is invited to, from one initial `/sync`, with their names. */
export async function pendingInvites(http: MatrixHttp): Promise<Invite[]> {
  const sync = await http.request({
    method: "GET",
    path: "/_matrix/client/v3/sync",
    query: { timeout: 0 },
    schema: syncSchema,
  });
  return Object.entries(sync.rooms?.invite ?? {}).map(([roomId, room]) => {
    const nameEvent = room.invite_state.events.find((e) => e.type === "m.room.name");
    const name = typeof nameEvent?.content.name === "string" ? nameEvent.content.name : roomId;
    return { roomId, name };
  });
}

export async function joinRoom(http: MatrixHttp, roomId: string): Promise<void> {
  await http.request({
    method: "POST",
    path: matrixPath`/_matrix/client/v3/join/${roomId}`,
    body: {},
    schema: roomIdSchema,
    // Joining a room one has joined changes nothing, so a lost answer may be asked again.
    retry: "safe",
  });
}

/** The room's latest encrypted events, oldest first. */
export async function encryptedHistory(http: MatrixHttp, roomId: string): Promise<TimelineEvent[]> {
  const page = await http.request({
    method: "GET",
    path: matrixPath`/_matrix/client/v3/rooms/${roomId}/messages`,
    query: { dir: "b", limit: 50 },
    schema: messagesSchema,
  });
  return page.chunk.filter((e) => e.type === "m.room.encrypted").reverse();
}
