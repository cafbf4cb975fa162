import { DEFAULT_SERVER_BACKOFF } from "./server-backoff.js";

/** Tuning of `client.deviceLists` (`deviceLists` in the client options). Times are ms on the clock. */
export interface DeviceListsOptions {
  /**
   * A user resynced less than this long ago is not resynced again: asks meanwhile resolve with the
   * current trust, and a user found stale meanwhile is resynced once the interval is over.
   * Default 10,000.
   */
  minResyncIntervalMs?: number;
  /** The wait after a server's first failure, doubling per failure in a row up to `capMs`. Default 15 s → 15 min. */
  serverBackoff?: { baseMs?: number; capMs?: number };
  /** Ask the homeserver to refresh its copy (MSC2638) where `/versions` advertises it. Default true. */
  msc2638?: boolean;
  /**
   * How long a refresh the server accepted (MSC2638, 202) may take to arrive through sync
   * (`device_lists.changed`) before the SDK re-queries instead. Default 30,000.
   */
  refreshArrivalTimeoutMs?: number;
  /** How long `client.rooms.send` waits for stale members' lists before it encrypts. Default 5,000. */
  sendTimeoutMs?: number;
}

/**
 * The longest time an option or `ensureFresh` accepts: 2^31 − 1 ms (about 24.8 days). Node's
 * `setTimeout` fires a longer delay after 1 ms instead, so a larger value is refused rather than
 * turned into no wait at all.
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** `DeviceListsOptions` with every default filled in. */
export interface DeviceListsSettings {
  minResyncIntervalMs: number;
  serverBackoff: { baseMs: number; capMs: number };
  msc2638: boolean;
  refreshArrivalTimeoutMs: number;
  sendTimeoutMs: number;
}

/**
 * The longest wait a 429 on a refresh imposes (its `retry_after_ms`, capped here): every refresh
 * waits it out, the refused one is asked once more, and re-queried if refused again.
 */
export const MAX_REFRESH_RETRY_AFTER_MS = 60_000;

/** The settings, or what is wrong with the options (for the client's `invalid_options`). */
export function deviceListsSettings(
  options: DeviceListsOptions | undefined,
): { ok: true; settings: DeviceListsSettings } | { ok: false; problem: string } {
  const o = options ?? {};
  if (typeof o !== "object" || o === null) return { ok: false, problem: "deviceLists must be an object" };
  const settings: DeviceListsSettings = {
    minResyncIntervalMs: o.minResyncIntervalMs ?? 10_000,
    serverBackoff: {
      baseMs: o.serverBackoff?.baseMs ?? DEFAULT_SERVER_BACKOFF.baseMs,
      capMs: o.serverBackoff?.capMs ?? DEFAULT_SERVER_BACKOFF.capMs,
    },
    msc2638: o.msc2638 ?? true,
    refreshArrivalTimeoutMs: o.refreshArrivalTimeoutMs ?? 30_000,
    sendTimeoutMs: o.sendTimeoutMs ?? 5_000,
  };
  const times: [string, number][] = [
    ["minResyncIntervalMs", settings.minResyncIntervalMs],
    ["serverBackoff.baseMs", settings.serverBackoff.baseMs],
    ["serverBackoff.capMs", settings.serverBackoff.capMs],
    ["refreshArrivalTimeoutMs", settings.refreshArrivalTimeoutMs],
    ["sendTimeoutMs", settings.sendTimeoutMs],
  ];
  for (const [name, value] of times) {
    if (!Number.isSafeInteger(value) || value < 0 || value > MAX_TIMEOUT_MS) {
      return {
        ok: false,
        problem: `deviceLists.${name} must be an integer from 0 to ${MAX_TIMEOUT_MS}`,
      };
    }
  }
  if (settings.serverBackoff.baseMs === 0 || settings.serverBackoff.capMs < settings.serverBackoff.baseMs) {
    return { ok: false, problem: "deviceLists.serverBackoff needs 0 < baseMs <= capMs" };
  }
  if (typeof settings.msc2638 !== "boolean")
    return { ok: false, problem: "deviceLists.msc2638 must be a boolean" };
  return { ok: true, settings };
}
