import type { DeviceListPosition } from "./device-list-delta.js";

/**
 * What a sliding sync connection knows at one `pos` (Synapse's `PerConnectionState`): where the
 * streams stood when the response was computed, which e2ee values the client then holds, and how
 * far each room was sent. Stored per position, so a retried request computes the same deltas.
 */
export interface SlidingConnectionState {
  /**
   * The key and room streams the response covered: the next `device_lists` delta and the next
   * room deltas start here.
   */
  streams: DeviceListPosition;
  /**
   * The to-device stream position when the response was computed. tuwunel and continuwuity
   * acknowledge to-device messages by `pos` (`slidingToDeviceSince`), so a `pos` stands for it.
   */
  toDevice: number;
  /** MSC3884 key fields as the client holds them after the response. */
  e2ee: HeldE2eeFields;
  /** Room id → how far that room was sent on this connection. */
  rooms: ReadonlyMap<string, SentRoom>;
}

export interface SentRoom {
  /** The room-stream position up to which the room's timeline and state were sent. */
  position: number;
  /** Sent as an invite (`invite_state` only): a later join sends the room afresh, as `initial`. */
  asInvite: boolean;
}

/**
 * The key fields a client holds from earlier responses. Under MSC3884 delta semantics an omitted
 * field means "unchanged", so the server must remember what it last sent; `undefined` means never
 * sent (the client knows nothing yet).
 */
export interface HeldE2eeFields {
  oneTimeKeyCounts?: Readonly<Record<string, number>>;
  unusedFallbackKeyTypes?: readonly string[];
}
