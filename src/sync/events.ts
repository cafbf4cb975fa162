import type { ReceivedToDeviceEvent } from "./crypto-sync.js";

/** Which loop a sync event comes from. */
export type SyncMode = "sliding" | "classic" | "extension";

/**
 * Events of the encryption loop (on `client.events` as `sync.*`). Payloads are plain data; the
 * to-device events are what the crypto layer returned (room-key material zeroised).
 */
export interface SyncEvents {
  /** The to-device events of one response, after the crypto layer processed them, in order. */
  toDevice: { mode: SyncMode; events: readonly ReceivedToDeviceEvent[] };
  /** Users whose device lists changed or who no longer share a room; the machine re-queries them. */
  deviceListsChanged: { mode: SyncMode; changed: readonly string[]; left: readonly string[] };
  /**
   * The server forgot the sliding-sync position (`M_UNKNOWN_POS`): the loop starts a new one with
   * the to-device cursor kept, and every tracked user's device list is marked for re-query (the
   * server will not send the changes missed meanwhile).
   */
  positionLost: { mode: SyncMode };
  /**
   * A step failed: the request (network, server, malformed response), processing the response
   * (the crypto call, or the app's `onResponse` on classic sync), or saving the positions. Nothing
   * was acknowledged; the loop asks again after `retryInMs` on the clock.
   */
  error: {
    mode: SyncMode;
    stage: "request" | "process" | "store";
    error: unknown;
    retryInMs: number | undefined;
  };
  /** Another tab or window of this origin runs this device's loop; this one waits for it to stop. */
  waitingForLock: { mode: SyncMode; lockName: string };
  /** The loop runs (it holds the device's connection). */
  running: { mode: SyncMode };
  /** The loop stopped and gave the connection up. */
  stopped: { mode: SyncMode };
}
