/**
 * The pure core of the encryption loop: what one sync response tells the crypto layer.
 *
 * The trap is the meaning of absence, and it differs by protocol:
 * - Sliding sync, MSC3884: an omitted field means *unchanged*, and so does an omitted `e2ee`
 *   object (a server MAY leave it out when nothing changed; Synapse does when its worker times
 *   out). `device_unused_fallback_key_types: []` means the fallback key was *used* — not the same
 *   as omitted. A field that is present keeps its `/sync` meaning (MSC3884: "exactly the same as
 *   the current /sync implementation"), so a count map without `signed_curve25519` says zero.
 * - Classic `/sync` (Client-Server API, "End-to-end encryption", sync response): a missing
 *   one-time-key count means zero; so does an algorithm the map does not list.
 *
 * So "unchanged" stays `undefined` here all the way to the crypto call's edge; this module never
 * turns an absence into an empty map or set, nor an empty one into an absence.
 */

/** The e2ee fields of a response, as parsed: `undefined` is "absent from the wire". */
export interface E2eeFields {
  deviceOneTimeKeysCount?: Readonly<Record<string, number>> | undefined;
  deviceUnusedFallbackKeyTypes?: readonly string[] | undefined;
  deviceLists?: { changed?: readonly string[] | undefined; left?: readonly string[] | undefined } | undefined;
}

/** What a sliding-sync response (MSC4186 with MSC3884 `e2ee` and MSC3885 `to_device`) carried. */
export interface SlidingSyncE2eeResponse {
  kind: "sliding";
  /** The `e2ee` extension object; `undefined` when the response had none. */
  e2ee: E2eeFields | undefined;
  /** The `to_device` extension object; `undefined` when the response had none. */
  toDevice: { events: readonly unknown[]; nextBatch: string | undefined } | undefined;
}

/** What a classic `/sync` response carried, at its top level. */
export interface ClassicSyncE2eeResponse extends E2eeFields {
  kind: "classic";
  toDeviceEvents: readonly unknown[] | undefined;
}

export type SyncE2eeResponse = SlidingSyncE2eeResponse | ClassicSyncE2eeResponse;

/**
 * The arguments of the one crypto call a response makes: crypto-wasm's
 * `receiveSyncChangesMsc4186` for sliding sync, `receiveSyncChanges` for classic.
 */
export interface CryptoSyncCall {
  method: "receiveSyncChangesMsc4186" | "receiveSyncChanges";
  toDeviceEvents: readonly unknown[];
  changed: readonly string[];
  left: readonly string[];
  /**
   * The counts to pass. `undefined`: unchanged (the shell passes crypto-wasm's "unchanged", an
   * empty `Map`, which only `receiveSyncChangesMsc4186` reads so). Otherwise they always carry the
   * signed-curve25519 count, zero when the server left it out.
   */
  oneTimeKeyCounts: Readonly<Record<string, number>> | undefined;
  /** `undefined`: unchanged (no `Set` passed). `[]`: the fallback key was used. */
  unusedFallbackKeyTypes: readonly string[] | undefined;
}

/** What the loop remembers between responses (the crypto layer keeps the real key state). */
export interface E2eeSyncState {
  /** The last counts the server reported, for status; `undefined` until one arrives. */
  oneTimeKeyCounts: Readonly<Record<string, number>> | undefined;
  /** The last fallback-key types the server reported; `undefined` until they arrive. */
  unusedFallbackKeyTypes: readonly string[] | undefined;
}

export const initialE2eeSyncState: E2eeSyncState = {
  oneTimeKeyCounts: undefined,
  unusedFallbackKeyTypes: undefined,
};

/**
 * What reducing one response gives: the next state, the crypto call, and the response's sliding
 * `to_device.next_batch` — the cursor to send as `since` next (MSC3885: the client MUST keep it;
 * the caller keeps it with the other positions). `undefined` when the response had no `to_device`,
 * or one without `next_batch`, and always on classic `/sync`: the previous cursor stays.
 */
export interface ReducedSyncE2ee {
  state: E2eeSyncState;
  call: CryptoSyncCall;
  toDeviceNextBatch: string | undefined;
}

/** The key algorithm whose count drives one-time-key uploads. */
export const SIGNED_CURVE25519 = "signed_curve25519";

/** One response in, the next state and the crypto call out. Pure; never throws. */
export function reduceSyncE2ee(state: E2eeSyncState, response: SyncE2eeResponse): ReducedSyncE2ee {
  return response.kind === "sliding" ? reduceSliding(state, response) : reduceClassic(state, response);
}

function reduceSliding(state: E2eeSyncState, response: SlidingSyncE2eeResponse): ReducedSyncE2ee {
  const e2ee = response.e2ee ?? {};
  // Present, the map lists what the server holds, and an algorithm it does not list is at zero
  // (Client-Server spec, sync `device_one_time_keys_count`). Servers that list only the algorithms
  // they hold keys for send `{}` once the keys are claimed; passed on as is, crypto-wasm would read
  // the missing count as unchanged and never upload more (rust-sdk `olm/account.rs`
  // `update_key_counts` acts only on a listed count).
  const wireCounts = e2ee.deviceOneTimeKeysCount;
  const counts = wireCounts === undefined ? undefined : { [SIGNED_CURVE25519]: 0, ...wireCounts };
  const fallback = e2ee.deviceUnusedFallbackKeyTypes;
  const toDevice = response.toDevice;
  const call: CryptoSyncCall = {
    method: "receiveSyncChangesMsc4186",
    toDeviceEvents: toDevice?.events ?? [],
    changed: e2ee.deviceLists?.changed ?? [],
    left: e2ee.deviceLists?.left ?? [],
    oneTimeKeyCounts: counts,
    unusedFallbackKeyTypes: fallback,
  };
  return {
    call,
    state: {
      // A present map is the whole picture, as on classic sync.
      oneTimeKeyCounts: counts ?? state.oneTimeKeyCounts,
      unusedFallbackKeyTypes: fallback ?? state.unusedFallbackKeyTypes,
    },
    toDeviceNextBatch: toDevice?.nextBatch,
  };
}

function reduceClassic(state: E2eeSyncState, response: ClassicSyncE2eeResponse): ReducedSyncE2ee {
  // Classic semantics: every count the server leaves out is zero — the signed-curve25519 one is
  // the count that matters, so it is made explicit rather than left to the crypto layer.
  const counts = { [SIGNED_CURVE25519]: 0, ...response.deviceOneTimeKeysCount };
  const fallback = response.deviceUnusedFallbackKeyTypes;
  return {
    call: {
      method: "receiveSyncChanges",
      toDeviceEvents: response.toDeviceEvents ?? [],
      changed: response.deviceLists?.changed ?? [],
      left: response.deviceLists?.left ?? [],
      oneTimeKeyCounts: counts,
      unusedFallbackKeyTypes: fallback,
    },
    state: {
      oneTimeKeyCounts: counts,
      unusedFallbackKeyTypes: fallback ?? state.unusedFallbackKeyTypes,
    },
    // The to-device cursor is sliding sync's alone: classic `since` is `next_batch`.
    toDeviceNextBatch: undefined,
  };
}
