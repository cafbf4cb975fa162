import type { ServerState } from "./state/server-state.js";
import type { ToDeviceEvent } from "./state/to-device-store.js";

/**
 * Reading a device's to-device inbox for tests (`MockControl.toDeviceInbox`), without
 * acknowledging anything: the messages stay until the device itself acknowledges them through a
 * sync. The cursor is the to-device stream position the sync endpoints use, so `nextBatch` can be
 * handed to sliding sync's `to_device.since` (MSC3885) to acknowledge exactly what was read.
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
