import type { DehydratedDeviceRejection } from "./device-validation.js";

/**
 * Events of the dehydrated-device manager. Payloads carry ids and reasons, never key material, so
 * an app may log them as they are.
 */
export interface DehydrationEvents {
  /** A new dehydrated device is on the server (it replaced any previous one). */
  uploaded: { deviceId: string };
  /** The dehydrated device was deleted from the server. */
  deleted: { deviceId: string; reason: "requested" | "identity-reset" };
  /** The dehydration key was stored in the machine's crypto store. */
  keyCached: { source: "secret-storage" | "created" };
  /** Secret storage holds another key than the one cached here: another client changed it. */
  keyChanged: { source: "secret-storage" };
  /**
   * The server's device failed validation; it is kept on the server and refused for rehydration —
   * unless it is the device this manager validated under our previous identity (see `rehydrate`).
   */
  validationFailed: { deviceId: string; reasons: readonly DehydratedDeviceRejection[] };
}
