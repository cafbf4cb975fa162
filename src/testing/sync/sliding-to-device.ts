import type { Profile } from "../profiles.js";
import type { ToDeviceEvent, ToDeviceStore } from "../state/to-device-store.js";

/**
 * The `to_device` extension of simplified sliding sync (MSC3885 on MSC4186). Synapse
 * (`get_to_device_extension_response`, synapse/handlers/sliding_sync/extensions.py):
 *
 * - `since` (the previous `next_batch`) acknowledges — deletes — every message up to it for the
 *   device, whichever connection sends it: the inbox is per device, not per connection, so a
 *   second connection with the extension enabled makes the first one lose messages;
 * - at most 100 events per response, whatever `limit` asks for;
 * - `events` is always present and `next_batch` is always a string: the last event's stream id
 *   when the page is full, otherwise the current to-device stream position;
 * - a `since` ahead of the stream ("from the future") returns no events and echoes `since`;
 * - `limit: 0` returns the current stream position (`toDeviceLimitZeroJumpsToHead`).
 *
 * tuwunel and continuwuity read the acknowledged position differently (`slidingToDeviceSince`),
 * send everything at once (`slidingToDeviceIgnoresLimit`) and shape an empty answer their own way
 * (`slidingToDeviceWhenEmpty`). Their `next_batch` is always the current position, since nothing
 * is held back.
 */

/** Synapse caps the page at 100 (`min(to_device_request.limit, 100)`). */
export const MAX_TO_DEVICE_EVENTS_PER_RESPONSE = 100;

export type SlidingToDeviceFlags = Pick<
  Profile,
  | "slidingToDeviceSince"
  | "slidingToDeviceIgnoresLimit"
  | "slidingToDeviceWhenEmpty"
  | "toDeviceLimitZeroJumpsToHead"
>;

export interface ToDeviceExtensionRequest {
  /**
   * `since` exactly as sent: validated as an integer under `"since"`, echoed unchanged when it is
   * ahead; under `"since-else-pos"` it may be anything (what does not parse is ignored).
   */
  since: string | undefined;
  limit: number;
}

export interface ToDeviceExtensionWire {
  next_batch: string;
  events?: ToDeviceEvent[];
}

/**
 * @param posToDevice the to-device stream position the request's `pos` covered (0 without `pos`):
 *   what tuwunel and continuwuity acknowledge by.
 * @returns the wire object, or `undefined` when the profile leaves the extension out.
 */
export function toDeviceExtension(
  store: ToDeviceStore,
  userId: string,
  deviceId: string,
  request: ToDeviceExtensionRequest,
  posToDevice: number,
  flags: SlidingToDeviceFlags,
): ToDeviceExtensionWire | undefined {
  if (flags.slidingToDeviceSince !== "since") {
    return rumaToDevice(store, userId, deviceId, request, posToDevice, flags);
  }
  let since = 0;
  if (request.since !== undefined) {
    since = Number(request.since);
    if (since > store.position) return shape({ next_batch: request.since, events: [] }, flags);
    store.acknowledge(userId, deviceId, since);
  }
  if (flags.slidingToDeviceIgnoresLimit) {
    const page = store.page(userId, deviceId, since, Number.MAX_SAFE_INTEGER);
    const events = page.events.map((e) => e.event);
    return shape({ next_batch: String(Math.max(since, store.position)), events }, flags);
  }
  const limit = Math.max(0, Math.min(request.limit, MAX_TO_DEVICE_EVENTS_PER_RESPONSE));
  // Synapse runs `LIMIT 0`, finds `rowcount == limit` and returns `last_processed_stream_pos`,
  // which starts at the head (synapse/storage/databases/main/deviceinbox.py).
  if (request.limit === 0 && flags.toDeviceLimitZeroJumpsToHead) {
    return shape({ next_batch: String(Math.max(since, store.position)), events: [] }, flags);
  }
  const page = store.page(userId, deviceId, since, limit);
  const nextBatch = page.hasMore ? page.nextAfter : Math.max(since, store.position);
  return shape({ next_batch: String(nextBatch), events: page.events.map((e) => e.event) }, flags);
}

/**
 * tuwunel (src/api/client/sync/v5/extensions/to_device.rs): `since` if it parses as a `u64`, else
 * the connection's `pos`, clamped to the current position; delete up to it, send the rest.
 * continuwuity (src/api/client/sync/v5.rs `collect_to_device`, `commit_sync_collection`): always
 * the connection's `pos`.
 */
function rumaToDevice(
  store: ToDeviceStore,
  userId: string,
  deviceId: string,
  request: ToDeviceExtensionRequest,
  posToDevice: number,
  flags: SlidingToDeviceFlags,
): ToDeviceExtensionWire | undefined {
  const head = store.position;
  let since = posToDevice;
  if (flags.slidingToDeviceSince === "since-else-pos" && request.since !== undefined) {
    // Rust's `u64::from_str`: an optional `+`, then digits; no whitespace, no sign otherwise.
    if (/^\+?\d+$/.test(request.since)) since = Number(request.since);
  }
  since = Math.min(since, head);
  store.acknowledge(userId, deviceId, since);
  const limit = flags.slidingToDeviceIgnoresLimit
    ? Number.MAX_SAFE_INTEGER
    : Math.max(0, Math.min(request.limit, MAX_TO_DEVICE_EVENTS_PER_RESPONSE));
  const page = store.page(userId, deviceId, since, limit);
  const nextBatch = page.hasMore ? page.nextAfter : head;
  return shape({ next_batch: String(nextBatch), events: page.events.map((e) => e.event) }, flags);
}

function shape(wire: ToDeviceExtensionWire, flags: SlidingToDeviceFlags): ToDeviceExtensionWire | undefined {
  if ((wire.events?.length ?? 0) > 0) return wire;
  if (flags.slidingToDeviceWhenEmpty === "omit-extension") return undefined;
  if (flags.slidingToDeviceWhenEmpty === "omit-events") return { next_batch: wire.next_batch };
  return wire;
}
