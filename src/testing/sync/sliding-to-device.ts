import type { ToDeviceEvent, ToDeviceStore } from "../state/to-device-store.js";

/**
 * The `to_device` extension of simplified sliding sync (MSC3885 on MSC4186), as Synapse's
 * `get_to_device_extension_response` answers it:
 *
 * - `since` (the previous `next_batch`) acknowledges — deletes — every message up to it for the
 *   device, whichever connection sends it: the inbox is per device, not per connection, so a
 *   second connection with the extension enabled makes the first one lose messages;
 * - at most 100 events per response, whatever `limit` asks for;
 * - `events` is always present and `next_batch` is always a string: the last event's stream id
 *   when the page is full, otherwise the current to-device stream position;
 * - a `since` ahead of the stream ("from the future") returns no events and echoes `since`.
 */

/** Synapse caps the page at 100 (`min(to_device_request.limit, 100)`). */
export const MAX_TO_DEVICE_EVENTS_PER_RESPONSE = 100;

export interface ToDeviceExtensionRequest {
  /** `since` exactly as sent: validated as an integer, echoed unchanged when it is ahead. */
  since: string | undefined;
  limit: number;
}

export interface ToDeviceExtensionWire {
  next_batch: string;
  events: ToDeviceEvent[];
}

export function toDeviceExtension(
  store: ToDeviceStore,
  userId: string,
  deviceId: string,
  request: ToDeviceExtensionRequest,
): ToDeviceExtensionWire {
  let since = 0;
  if (request.since !== undefined) {
    since = Number(request.since);
    if (since > store.position) return { next_batch: request.since, events: [] };
    store.acknowledge(userId, deviceId, since);
  }
  const limit = Math.max(0, Math.min(request.limit, MAX_TO_DEVICE_EVENTS_PER_RESPONSE));
  const page = store.page(userId, deviceId, since, limit);
  const nextBatch = page.hasMore ? page.nextAfter : Math.max(since, store.position);
  return { next_batch: String(nextBatch), events: page.events.map((e) => e.event) };
}
