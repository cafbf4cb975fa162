import { z } from "zod";
import { orUndefinedOn } from "../http/expected-errors.js";
import { matrixPath } from "../http/path.js";
import type { MatrixHttp } from "../http/types.js";

/**
 * What the SDK asks the server about a room when the app has not told it: the two state events
 * that decide encryption, and the member list. Plain reads (GET, retried by the transport).
 */

const stateContentSchema = z.looseObject({});
const membersSchema = z.looseObject({
  chunk: z.array(
    z.looseObject({
      type: z.string(),
      state_key: z.string().optional(),
      content: z.looseObject({ membership: z.string().optional() }),
    }),
  ),
});

/** A state event's content; `undefined` when the room has none (404 `M_NOT_FOUND`). */
export async function fetchStateContent(
  http: MatrixHttp,
  roomId: string,
  eventType: string,
  signal: AbortSignal,
): Promise<Record<string, unknown> | undefined> {
  return orUndefinedOn(
    http.request({
      method: "GET",
      path: matrixPath`/_matrix/client/v3/rooms/${roomId}/state/${eventType}`,
      schema: stateContentSchema,
      signal,
    }),
    ["M_NOT_FOUND"],
  );
}

/** Every member's membership, from `GET /rooms/{roomId}/members` (the server's current state). */
export async function fetchMembers(
  http: MatrixHttp,
  roomId: string,
  signal: AbortSignal,
): Promise<Map<string, string>> {
  const response = await http.request({
    method: "GET",
    path: matrixPath`/_matrix/client/v3/rooms/${roomId}/members`,
    schema: membersSchema,
    signal,
  });
  const members = new Map<string, string>();
  for (const event of response.chunk) {
    if (event.type !== "m.room.member" || event.state_key === undefined) continue;
    const membership = event.content.membership;
    if (typeof membership === "string") members.set(event.state_key, membership);
  }
  return members;
}
