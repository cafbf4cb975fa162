import { z } from "zod";

/** `PUT /rooms/{roomId}/send/{eventType}/{txnId}`: the id the server gave the event. */
export const roomSendResponseSchema = z.looseObject({ event_id: z.string() });

export type RoomSendResponse = z.infer<typeof roomSendResponseSchema>;
