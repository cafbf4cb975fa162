import type { ReceivedToDeviceEvent } from "./crypto-sync.js";
import type { DroppedToDevice } from "./dehydrated-senders.js";

/** Which loop a sync event comes from. */
export type SyncMode = "sliding" | "classic" | "extension";

/**
 * Events of the encryption loop (on `client.events` as `sync.*`). Payloads are plain data; the
 * to-device events are what the crypto layer returned (room-key material zeroised).
 */
export interface SyncEvents {
  /** The to-device events of one response, after the crypto layer processed them, in order. */
  toDevice: { mode: SyncMode; events: readonly ReceivedToDeviceEvent[] };
  /**
   * Plaintext to-device messages left out before the crypto layer saw them, because they name a
   * dehydrated device as their sender (MSC3814: a dehydrated device never sends). Encrypted ones
   * from such a device are dropped by crypto-wasm and reported nowhere.
   */
  toDeviceDropped: { mode: SyncMode; events: readonly DroppedToDevice[] };
  /** Users whose device lists changed or who no longer share a room; the machine re-queries them. */
  deviceListsChanged: { mode: SyncMode; changed: readonly string[]; left: readonly string[] };
  /**
   * The server forgot the sliding-sync position (`M_UNKNOWN_POS`): the loop starts a new one with
   * the to-device cursor kept, and every tracked user's device list is marked for re-query (the
   * server will not send the changes missed meanwhile).
   */
  positionLost: { mode: SyncMode };
  /**
   * A step failed. `request` (network, server, malformed response) or `process` (the crypto call,
   * or the app's `onResponse` on classic sync): nothing was acknowledged; the loop asks again after
   * `retryInMs` on the clock. `store`: reading the saved positions when a loop starts — it reads
   * them again after `retryInMs`, sending nothing meanwhile — or saving them after a response
   * (`retryInMs` `undefined`): that response was processed and the loop goes on from the positions
   * it keeps in memory; only a reload before the next successful save replays from the last saved
   * ones (harmless: crypto-wasm ignores what it already has).
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
