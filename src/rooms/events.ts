import type { RoomEventDecryptedPayload, RoomKeyWithheldPayload } from "./room-decryption.js";

/** Events of `client.rooms` (on `client.events` as `rooms.*`). Payloads are plain data. */
export interface RoomsEvents {
  /**
   * An event that could not be decrypted for want of its room key decrypted once the key arrived
   * (a to-device `m.room_key` through sync, a rehydrated device, a backup): the event's id and the
   * result, as `decrypt` would give it now.
   */
  decrypted: RoomEventDecryptedPayload;
  /**
   * The sender told us they withhold the key of waiting events (`m.room_key.withheld`). The events
   * stay waiting: the sender may share the key later (after verifying this device, say).
   */
  keyWithheld: RoomKeyWithheldPayload;
}
