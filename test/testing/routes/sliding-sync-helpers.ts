import type { MockHomeserver } from "../../../src/testing/index.js";
import { SLIDING_SYNC_PATH } from "../../../src/testing/routes/sliding-sync.js";
import type { FetchTarget } from "../support/transports.js";
import type { TestDevice } from "./e2ee-test-users.js";

/** Helpers shared by the sliding sync route tests. */

export interface SlidingReply {
  status: number;
  body: Record<string, unknown>;
}

/** One sliding sync request as `device`; `query` carries `pos` / `timeout`. */
export async function slide(
  server: FetchTarget,
  device: Pick<TestDevice, "accessToken">,
  body: unknown,
  query: Record<string, string | number> = {},
  signal?: AbortSignal,
): Promise<SlidingReply> {
  const params = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
  const search = params.size > 0 ? `?${params}` : "";
  const res = await server.fetch(`${SLIDING_SYNC_PATH}${search}`, {
    method: "POST",
    headers: { authorization: `Bearer ${device.accessToken}`, "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

/** The `e2ee` / `to_device` extension objects of a reply. */
export function extension(reply: SlidingReply, name: "e2ee" | "to_device"): Record<string, unknown> {
  const extensions = reply.body.extensions as Record<string, Record<string, unknown>> | undefined;
  const value = extensions?.[name];
  if (value === undefined) throw new Error(`no ${name} extension in ${JSON.stringify(reply.body)}`);
  return value;
}

export const E2EE_ONLY = { extensions: { e2ee: { enabled: true } } };

let eventCounter = 0;

/**
 * A room straight in the store (the room routes are tested elsewhere): created by `creator`, with
 * `m.room.encryption` when `encrypted`, and each of `members` joined.
 */
export function createRoomInStore(
  mock: MockHomeserver,
  roomId: string,
  creator: string,
  options: { members?: string[]; invited?: string[]; encrypted?: boolean; name?: string } = {},
): void {
  const rooms = mock.state.rooms;
  rooms.createRoom(roomId);
  appendEvent(mock, roomId, creator, "m.room.create", { room_version: "10" }, "");
  appendEvent(mock, roomId, creator, "m.room.member", { membership: "join" }, creator);
  if (options.encrypted) {
    appendEvent(mock, roomId, creator, "m.room.encryption", { algorithm: "m.megolm.v1.aes-sha2" }, "");
  }
  if (options.name !== undefined)
    appendEvent(mock, roomId, creator, "m.room.name", { name: options.name }, "");
  for (const member of options.members ?? []) {
    appendEvent(mock, roomId, member, "m.room.member", { membership: "join" }, member);
  }
  for (const invitee of options.invited ?? []) {
    appendEvent(mock, roomId, creator, "m.room.member", { membership: "invite" }, invitee);
  }
}

export function appendEvent(
  mock: MockHomeserver,
  roomId: string,
  sender: string,
  type: string,
  content: Record<string, unknown>,
  stateKey?: string,
) {
  eventCounter++;
  return mock.state.rooms.append(
    roomId,
    {
      type,
      sender,
      content,
      originServerTs: mock.clock.now(),
      ...(stateKey !== undefined ? { stateKey } : {}),
    },
    `$event${eventCounter}`,
  );
}

export function sendMessage(mock: MockHomeserver, roomId: string, sender: string, body: string) {
  return appendEvent(mock, roomId, sender, "m.room.message", { msgtype: "m.text", body });
}
