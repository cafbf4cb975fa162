import { exponentialDelayMs } from "../../http/retry-policy.js";

/**
 * When to drain and replace the dehydrated device, as a pure decision: data in, step out.
 *
 * MSC3814 asks a client to replace the device after rehydrating it (its one-time keys are used
 * up) and lets clients rotate it now and then. Every replacement deletes the old device and its
 * inbox on the server, and keys sent while every client was closed exist only there. Hence:
 * - replace only right after this client drained the current device, or when the server has none;
 * - on start, act only if a device is waiting for a new login or the interval has passed — a
 *   client that replaced the device on every start would fight every other client of the user;
 * - if another client replaced the device, adopt it (re-read the key) and wait a full interval.
 */

/** What this client remembers about the server's device (persisted). */
export interface RotationRecord {
  /** The device this client last uploaded, or adopted from another client. */
  deviceId: string;
  /** When it was uploaded here, or first seen here if adopted. */
  sinceMs: number;
  /** Whether this client uploaded it. */
  uploadedHere: boolean;
}

/** One week, the interval matrix-js-sdk (Element) rotates at. */
export const defaultRotateEveryMs = 7 * 24 * 60 * 60 * 1000;

export type RotationStep =
  /** The server has no device (or never had one): upload one, nothing can be lost. */
  | { kind: "upload" }
  /** Drain `deviceId` to its end, then replace it. */
  | { kind: "drain-and-replace"; deviceId: string; reason: "new_login" | "due" }
  /** Take the server's device as the current one and wait a full interval. */
  | { kind: "adopt"; deviceId: string; reason: "replaced_elsewhere" | "not_rehydrating" }
  /** Nothing to do before `dueAtMs`. */
  | { kind: "wait"; deviceId: string; dueAtMs: number };

export interface RotationInput {
  record: RotationRecord | undefined;
  /** The server's current device; `undefined` when it has none. */
  serverDeviceId: string | undefined;
  nowMs: number;
  rotateEveryMs: number;
  /** Whether this client may drain a device it has not seen before (`start({ rehydrate })`). */
  rehydrate: boolean;
}

export function planRotationStep(input: RotationInput): RotationStep {
  const { record, serverDeviceId, nowMs } = input;
  if (serverDeviceId === undefined) return { kind: "upload" };
  if (record === undefined) {
    // A device this client has never seen: it may hold keys sent before this login existed.
    return input.rehydrate
      ? { kind: "drain-and-replace", deviceId: serverDeviceId, reason: "new_login" }
      : { kind: "adopt", deviceId: serverDeviceId, reason: "not_rehydrating" };
  }
  if (record.deviceId !== serverDeviceId) {
    // Another client rotated it (after draining ours, by the same rule). Not a fight: follow.
    return { kind: "adopt", deviceId: serverDeviceId, reason: "replaced_elsewhere" };
  }
  const dueAtMs = record.sinceMs + input.rotateEveryMs;
  if (nowMs >= dueAtMs) return { kind: "drain-and-replace", deviceId: serverDeviceId, reason: "due" };
  return { kind: "wait", deviceId: serverDeviceId, dueAtMs };
}

/**
 * How long to wait after the `failures`-th failure in a row (a drain that failed or was truncated,
 * an upload that failed): doubling from 1 minute, never beyond 6 hours nor the rotation interval.
 */
export function rotationRetryDelayMs(failures: number, rotateEveryMs: number): number {
  return Math.min(exponentialDelayMs(failures, 60_000, 6 * 60 * 60 * 1000), rotateEveryMs);
}
