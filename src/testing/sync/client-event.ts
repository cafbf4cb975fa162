import type { StoredEvent } from "../state/room-store.js";

/**
 * Stored events in the client formats of the Client-Server spec ("Room events": `ClientEvent`,
 * `ClientEventWithoutRoomId` in `/sync`, stripped state in `invite_state`).
 */

export interface EventViewer {
  userId: string;
  deviceId: string;
}

export interface ClientEventOptions {
  /** `/sync` leaves `room_id` out of room events; `/messages`, `/state` and `/members` include it. */
  includeRoomId: boolean;
  /** Now, for `unsigned.age`. */
  now: number;
}

/**
 * `unsigned.transaction_id` goes only to the device that sent the event (spec, "Transaction
 * identifiers"), which is how a client recognises its own echo.
 */
export function toClientEvent(
  event: StoredEvent,
  viewer: EventViewer,
  options: ClientEventOptions,
): Record<string, unknown> {
  const unsigned: Record<string, unknown> = { age: Math.max(0, options.now - event.originServerTs) };
  if (event.transaction && event.sender === viewer.userId && event.transaction.deviceId === viewer.deviceId) {
    unsigned.transaction_id = event.transaction.txnId;
  }
  if (event.prevContent !== undefined) unsigned.prev_content = structuredClone(event.prevContent);
  const json: Record<string, unknown> = {
    type: event.type,
    content: structuredClone(event.content),
    sender: event.sender,
    event_id: event.eventId,
    origin_server_ts: event.originServerTs,
    unsigned,
  };
  if (event.stateKey !== undefined) json.state_key = event.stateKey;
  if (options.includeRoomId) json.room_id = event.roomId;
  return json;
}

/** The stripped form of a state event (`invite_state`, sliding sync's `invite_state`). */
export function toStrippedStateEvent(event: StoredEvent): Record<string, unknown> {
  return {
    type: event.type,
    state_key: event.stateKey ?? "",
    content: structuredClone(event.content),
    sender: event.sender,
  };
}
