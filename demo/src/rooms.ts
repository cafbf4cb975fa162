import { z } from "zod";
import { type MatrixCalls, path } from "./matrix-calls.js";

/**
 * The room calls the demo makes itself (the SDK encrypts and sends messages, but keeps no
 * timeline): Bob creates encrypted rooms and syncs; Alice's new login lists her rooms, joins and
 * reads history.
 * Every answer is validated before use, as the SDK does with its own calls.
 */

const roomIdSchema = z.looseObject({ room_id: z.string() });

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

/** The state Bob's rooms start with: Megolm from the first event, history shared with members. */
export const ROOM_ENCRYPTION = { algorithm: "m.megolm.v1.aes-sha2" } as const;
export const ROOM_HISTORY_VISIBILITY = { history_visibility: "shared" } as const;

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
        { type: "m.room.encryption", state_key: "", content: ROOM_ENCRYPTION },
        { type: "m.room.history_visibility", state_key: "", content: ROOM_HISTORY_VISIBILITY },
      ],
    },
    schema: roomIdSchema,
  });
  return created.room_id;
}

/**
 * One classic `/sync` without waiting (`timeout=0`), answered as the server sent it: Bob's app
 * hands it to `client.sync.receiveClassic`, so his crypto layer hears of device-list changes
 * (`device_lists.changed`: a device Alice, or her server, added). `since` continues the last one.
 */
export async function syncOnce(
  calls: MatrixCalls,
  since: string | undefined,
): Promise<{ nextBatch: string; response: unknown }> {
  const response = await calls.request({
    method: "GET",
    path: "/_matrix/client/v3/sync",
    query: since === undefined ? { timeout: 0 } : { timeout: 0, since },
    schema: z.looseObject({ next_batch: z.string() }),
  });
  return { nextBatch: response.next_batch, response };
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
