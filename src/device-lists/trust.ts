import type { ErrorInfo } from "../errors/error-info.js";

/**
 * Why a user's device list is thought stale. Each names the evidence, never more than the
 * public identifiers it came with (device ids, Curve25519 public keys, server names).
 */
export type DeviceListStaleReason =
  /**
   * A message came from a device id or sender key the list does not hold: a room event
   * (`room_event`) or a to-device message (`to_device`). Synapse resyncs a remote user itself on
   * such a federated `m.room.encrypted` (`handlers/federation_event.py` `_resync_device`).
   */
  | { kind: "unknown_device"; source: "room_event" | "to_device"; deviceId?: string; senderKey?: string }
  /** The user has cross-signing keys and these devices carry no signature of theirs. */
  | { kind: "unsigned_devices"; deviceIds: string[] }
  /** A `keys/query` answer listed the user's server in `failures`: the homeserver could not reach it. */
  | { kind: "key_query_failed"; server: string }
  /** The sync position was lost: changes announced meanwhile were never seen (MSC4186). */
  | { kind: "position_lost" }
  /** The app said so (`report`), e.g. the user says they have a device we don't see. */
  | { kind: "reported"; note?: string }
  /** The app asked for a resync (`requestResync`) with no other evidence. */
  | { kind: "requested" };

/**
 * What the SDK knows of how current one user's device list is. Plain data.
 *
 * - `unknown`: nothing was ever judged — no staleness sign was seen and this SDK never resynced
 *   the user. The crypto layer still follows the user's list through sync as always; `unknown`
 *   only says this module has no evidence either way, so it is not resynced before a send.
 * - `fresh`: a resync finished. `cleared` says which staleness it could clear: `server_and_client`
 *   only after the homeserver accepted an MSC2638 refresh (202), announced the user in a
 *   `device_lists.changed` seen after the 202, and answered a `keys/query` sent after that
 *   announcement (`RefreshArrivals`); `client_only` after a plain re-query, which
 *   fixes this client's copy but not a stale server cache (Synapse answers a remote user's
 *   `keys/query` from its cache, `handlers/e2e_keys.py` `query_devices`). For a user of this
 *   client's own homeserver the server's list is the authoritative one, so `client_only` is all
 *   there is to clear.
 * - `stale`: evidence says the list may be behind; a resync is due.
 * - `refreshing`: a resync runs, by MSC2638 (`msc2638`) or by re-query (`requery`).
 * - `failed`: the user's server could not be reached (or this client's own homeserver failed the
 *   query); no request for them is sent before `nextRetryAt`, when the SDK retries by itself.
 */
export type DeviceListTrust =
  | { state: "unknown"; userId: string }
  | {
      state: "fresh";
      userId: string;
      cleared: "server_and_client" | "client_only";
      /** When the resync finished, on the client's clock (ms since the epoch). */
      refreshedAt: number;
    }
  | { state: "stale"; userId: string; reasons: DeviceListStaleReason[] }
  | { state: "refreshing"; userId: string; reasons: DeviceListStaleReason[]; via: "msc2638" | "requery" }
  | {
      state: "failed";
      userId: string;
      reasons: DeviceListStaleReason[];
      /** The server that failed: the user's, or this client's own homeserver. */
      server: string;
      nextRetryAt: number;
      error: ErrorInfo;
    };

/** What can happen to one user's trust; `reduceTrust` says what follows. */
export type TrustInput =
  /** A detector found evidence. */
  | { type: "evidence"; reasons: readonly DeviceListStaleReason[] }
  /** A resync started. */
  | { type: "started"; via: "msc2638" | "requery" }
  /** A resync (or, for `position_lost` alone, the crypto layer's own re-query) finished. */
  | { type: "refreshed"; cleared: "server_and_client" | "client_only"; at: number }
  /** A server failed; nothing is asked before `nextRetryAt`. */
  | { type: "failed"; server: string; nextRetryAt: number; error: ErrorInfo; reason?: DeviceListStaleReason };

/** Reasons kept per user at most: the newest win, so a long outage cannot grow a trust without bound. */
export const MAX_REASONS = 8;

/** Notes from the app are cut to this many characters. */
export const MAX_NOTE_LENGTH = 200;

/**
 * The next trust of one user. Pure: the same inputs always give the same trust.
 *
 * Evidence never interrupts a resync (its reasons join it) and never lifts a failure early (the
 * server's backoff decides when to ask again). A resync whose answer came from a query sent before
 * the evidence cannot have answered it: `DeviceLists` judges such evidence again once the resync
 * is over, and it makes the list stale again if the list still lacks what it names.
 */
export function reduceTrust(current: DeviceListTrust, input: TrustInput): DeviceListTrust {
  const { userId } = current;
  switch (input.type) {
    case "evidence": {
      if (input.reasons.length === 0) return current;
      const reasons = mergeReasons(reasonsOf(current), input.reasons);
      if (current.state === "refreshing" || current.state === "failed") return { ...current, reasons };
      return { state: "stale", userId, reasons };
    }
    case "started": {
      const reasons = reasonsOf(current);
      return {
        state: "refreshing",
        userId,
        reasons: reasons.length > 0 ? reasons : [{ kind: "requested" }],
        via: input.via,
      };
    }
    case "refreshed":
      return { state: "fresh", userId, cleared: input.cleared, refreshedAt: input.at };
    case "failed": {
      const extra = input.reason === undefined ? [] : [input.reason];
      return {
        state: "failed",
        userId,
        reasons: mergeReasons(reasonsOf(current), extra),
        server: input.server,
        nextRetryAt: input.nextRetryAt,
        error: input.error,
      };
    }
  }
}

/** The reasons a trust carries; none for `unknown` and `fresh`. */
export function reasonsOf(trust: DeviceListTrust): DeviceListStaleReason[] {
  return "reasons" in trust ? trust.reasons : [];
}

/** Whether a resync is due: there is evidence, and nothing answers it yet. */
export function needsResync(trust: DeviceListTrust): boolean {
  return trust.state === "stale" || trust.state === "failed" || trust.state === "refreshing";
}

/** Two trusts say the same (so no change is announced). */
export function sameTrust(a: DeviceListTrust, b: DeviceListTrust): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** `earlier` then `later`, each reason once (the later copy wins its place), newest `MAX_REASONS`. */
export function mergeReasons(
  earlier: readonly DeviceListStaleReason[],
  later: readonly DeviceListStaleReason[],
): DeviceListStaleReason[] {
  const byKey = new Map<string, DeviceListStaleReason>();
  for (const reason of [...earlier, ...later]) {
    const key = reasonKey(reason);
    byKey.delete(key);
    byKey.set(key, reason);
  }
  return [...byKey.values()].slice(-MAX_REASONS);
}

function reasonKey(reason: DeviceListStaleReason): string {
  return JSON.stringify(reason);
}
