import { serverNameOf } from "./routes/matrix-ids.js";
import type { ServerState } from "./state/server-state.js";
import { localRecipients, type ToDeviceMessages } from "./state/to-device-delivery.js";
import type { ToDeviceEvent } from "./state/to-device-store.js";

/**
 * Reading a device's to-device inbox for tests (`MockControl.toDeviceInbox`), without
 * acknowledging anything: the messages stay until the device itself acknowledges them through a
 * sync. The cursor is the to-device stream position the sync endpoints use, so `nextBatch` can be
 * handed to sliding sync's `to_device.since` (MSC3885) to acknowledge exactly what was read.
 *
 * And the server making up to-device messages (`MockControl.sendToDeviceAs`): a to-device event
 * carries only `sender` (a user id), and nothing but the server vouches for which device sent it,
 * so a hostile server can deliver messages as any device of a user — a dehydrated or injected one
 * included, which MSC3814's security section tells receivers to ignore.
 */

export interface ToDeviceInboxOptions {
  /** A previous `nextBatch`: only messages after it. Default: from the start of the inbox. */
  since?: string;
  /** At most this many events. Default: all of them. */
  limit?: number;
}

export interface ToDeviceInbox {
  /** Oldest first, as the device would receive them. */
  events: ToDeviceEvent[];
  /**
   * Where to continue: the last event's position when more follow, otherwise the stream's current
   * position (so messages that arrive later come after it), or `since` if that is ahead.
   */
  nextBatch: string;
}

/** Throws `RangeError` for a device the user does not have, a malformed `since` or a bad `limit`. */
export function toDeviceInbox(
  state: ServerState,
  userId: string,
  deviceId: string,
  options: ToDeviceInboxOptions = {},
): ToDeviceInbox {
  if (!state.accounts.hasDevice(userId, deviceId)) {
    throw new RangeError(`${userId} has no device ${deviceId}`);
  }
  const { since, limit } = options;
  if (since !== undefined && !/^\d+$/.test(since)) {
    throw new RangeError("since must be a nextBatch value: a non-negative integer as a string");
  }
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
    throw new RangeError("limit must be a non-negative integer");
  }
  const after = since === undefined ? 0 : Number(since);
  const store = state.toDevice;
  if (after > store.position) return { events: [], nextBatch: since ?? "0" };
  const page = store.page(userId, deviceId, after, limit ?? Number.MAX_SAFE_INTEGER);
  const next = page.hasMore ? page.nextAfter : Math.max(after, store.position);
  return { events: page.events.map((e) => e.event), nextBatch: String(next) };
}

/** Who `sendToDeviceAs` pretends sent the messages. */
export interface ToDeviceSender {
  userId: string;
  /** Any device the user has: logged in, dehydrated or injected. */
  deviceId: string;
}

/**
 * Delivers `messages` (a `sendToDevice` body's `messages`) as though `sender` had sent them,
 * reaching the devices that `PUT /sendToDevice` would (`"*"` alone means every device of a user;
 * unknown devices, malformed user ids and users of servers the mock does not host are dropped). Each event's
 * `sender` is `sender.userId`. No transaction id, no size limit: the server itself is sending.
 * Returns how many events were delivered.
 *
 * Throws `RangeError` for a sender device the user does not have, an empty event type, or
 * `messages` not shaped user → device → content object. Nothing is delivered when it throws.
 */
export function sendToDeviceAs(
  state: ServerState,
  sender: ToDeviceSender,
  eventType: string,
  messages: ToDeviceMessages,
): number {
  if (!isObject(sender) || !state.accounts.hasDevice(sender.userId, sender.deviceId)) {
    throw new RangeError(`${sender?.userId} has no device ${sender?.deviceId}`);
  }
  if (typeof eventType !== "string" || eventType === "") {
    throw new RangeError("eventType must be a non-empty string");
  }
  if (!isObject(messages)) throw new RangeError("messages must be an object: user id → device id → content");
  for (const [userId, byDevice] of Object.entries(messages)) {
    if (!isObject(byDevice))
      throw new RangeError(`messages[${userId}] must be an object: device id → content`);
    for (const [deviceId, content] of Object.entries(byDevice)) {
      if (!isObject(content)) throw new RangeError(`messages[${userId}][${deviceId}] must be an object`);
    }
  }
  const deliveries: [userId: string, deviceId: string, content: Record<string, unknown>][] = [];
  for (const [userId, byDevice] of Object.entries(messages)) {
    if (!state.remoteDeviceLists.hosts(serverNameOf(userId))) continue;
    for (const [deviceId, content] of localRecipients(state, userId, byDevice)) {
      deliveries.push([userId, deviceId, content]);
    }
  }
  for (const [userId, deviceId, content] of deliveries) {
    state.toDevice.enqueue(userId, deviceId, { type: eventType, sender: sender.userId, content });
  }
  return deliveries.length;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
