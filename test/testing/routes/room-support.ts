import { expect } from "vitest";
import type { MockHomeserver } from "../../../src/testing/index.js";
import type { TestDevice } from "./e2ee-test-users.js";

/** Shortcuts for the room and sync route tests; every call goes through the mock's HTTP surface. */

export async function createRoom(user: TestDevice, body: Record<string, unknown> = {}): Promise<string> {
  const res = await user.call("POST", "createRoom", body);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.room_id as string;
}

let txn = 0;
export async function sendText(user: TestDevice, roomId: string, body: string): Promise<string> {
  const res = await user.call("PUT", `rooms/${encodeURIComponent(roomId)}/send/m.room.message/t${txn++}`, {
    msgtype: "m.text",
    body,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.event_id as string;
}

export async function invite(user: TestDevice, roomId: string, target: TestDevice): Promise<void> {
  const res = await user.call("POST", `rooms/${encodeURIComponent(roomId)}/invite`, {
    user_id: target.userId,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

export async function join(user: TestDevice, roomId: string): Promise<void> {
  const res = await user.call("POST", `join/${encodeURIComponent(roomId)}`, {});
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

export async function leave(user: TestDevice, roomId: string): Promise<void> {
  const res = await user.call("POST", `rooms/${encodeURIComponent(roomId)}/leave`, {});
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

/** A room `owner` created with `members` invited and joined. */
export async function sharedRoom(owner: TestDevice, ...members: TestDevice[]): Promise<string> {
  const roomId = await createRoom(owner);
  for (const m of members) {
    await invite(owner, roomId, m);
    await join(m, roomId);
  }
  return roomId;
}

export interface SyncBody {
  next_batch: string;
  rooms?: {
    join?: Record<string, JoinedRoom>;
    invite?: Record<string, { invite_state: { events: Record<string, unknown>[] } }>;
    leave?: Record<string, JoinedRoom>;
  };
  account_data?: { events: { type: string; content: Record<string, unknown> }[] };
  to_device?: { events: { type: string; sender: string; content: Record<string, unknown> }[] };
  device_lists?: { changed?: string[]; left?: string[] };
  device_one_time_keys_count?: Record<string, number>;
  device_unused_fallback_key_types?: string[];
}

export interface ClientEvent {
  type: string;
  event_id: string;
  sender: string;
  content: Record<string, unknown>;
  state_key?: string;
  unsigned?: Record<string, unknown>;
}

export interface JoinedRoom {
  timeline: { events: ClientEvent[]; prev_batch: string; limited: boolean };
  state: { events: ClientEvent[] };
  unread_notifications?: { notification_count: number; highlight_count: number };
  summary?: Record<string, unknown>;
}

export async function sync(user: TestDevice, query = ""): Promise<SyncBody> {
  const res = await user.call("GET", `sync${query ? `?${query}` : ""}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as unknown as SyncBody;
}

export function since(token: string, extra = ""): string {
  return `since=${encodeURIComponent(token)}${extra ? `&${extra}` : ""}`;
}

export function stateKeys(mock: MockHomeserver, roomId: string): string[] {
  return mock.state.rooms.currentState(roomId).map((e) => `${e.type}|${e.stateKey}`);
}
