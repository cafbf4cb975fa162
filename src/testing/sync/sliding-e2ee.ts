import type { Profile } from "../profiles.js";
import type { HeldE2eeFields } from "./sliding-connection-state.js";

/**
 * The `e2ee` extension of simplified sliding sync (MSC3884 on MSC4186): which key fields a
 * response carries, under each server's habits. Pure: current values and what the client already
 * holds in, the wire object and what the client will hold out.
 *
 * - Synapse (`SlidingSyncRestServlet.encode_extensions`) always sends both key fields — counts
 *   seeded with `signed_curve25519: 0` — and `device_lists` exactly when the request had a `pos`.
 * - MSC3884 as written: the first response has every field, later ones only fields whose value
 *   changed since the `pos`; an omitted field means unchanged, and `device_unused_fallback_key_types:
 *   []` means the fallback key was used, which is not the same as omitting it.
 * - tuwunel dropped a zero count; a client that reads the omitted field as unchanged then keeps
 *   believing it has keys on the server and never uploads more.
 * - continuwuity drops zero counts too, and never sends `device_unused_fallback_key_types`.
 */

export type SlidingE2eeFlags = Pick<
  Profile,
  | "slidingE2eeKeyFields"
  | "slidingE2eeDeviceLists"
  | "slidingOmitZeroKeyCounts"
  | "slidingSendsFallbackKeyTypes"
>;

export interface E2eeCurrentValues {
  /** One-time key counts as the profile reports them (already seeded where it seeds). */
  oneTimeKeyCounts: Readonly<Record<string, number>>;
  unusedFallbackKeyTypes: readonly string[];
  /** The delta since the request's `pos`; `undefined` for a request without `pos`. */
  deviceLists: { changed: readonly string[]; left: readonly string[] } | undefined;
}

export interface E2eeExtensionWire {
  device_one_time_keys_count?: Record<string, number>;
  device_unused_fallback_key_types?: string[];
  device_lists?: { changed: string[]; left: string[] };
}

export interface E2eeExtensionResult {
  wire: E2eeExtensionWire;
  /** What the client holds once it has applied `wire`. */
  held: HeldE2eeFields;
  /**
   * Whether this is news that ends a long-poll early. Synapse wakes only for device-list changes
   * (key counts are always present, so they cannot be told apart from "unchanged"); with delta
   * semantics a changed key field is news too.
   */
  hasNews: boolean;
}

/**
 * @param held what the client holds from the response at its `pos`; `undefined` on a request
 *   without `pos` (a new or restarted connection, where MSC3884 sends every field).
 */
export function e2eeExtension(
  current: E2eeCurrentValues,
  held: HeldE2eeFields | undefined,
  flags: SlidingE2eeFlags,
): E2eeExtensionResult {
  const wire: E2eeExtensionWire = {};
  const nextHeld: HeldE2eeFields = { ...held };
  const delta = flags.slidingE2eeKeyFields === "when-changed";
  let keyNews = false;

  const counts = flags.slidingOmitZeroKeyCounts
    ? Object.fromEntries(Object.entries(current.oneTimeKeyCounts).filter(([, n]) => n !== 0))
    : { ...current.oneTimeKeyCounts };
  const countsOmittedAsZero = flags.slidingOmitZeroKeyCounts && Object.keys(counts).length === 0;
  if (!countsOmittedAsZero) {
    const changed = !sameCounts(counts, held?.oneTimeKeyCounts);
    if (!delta || held === undefined || changed) {
      wire.device_one_time_keys_count = counts;
      nextHeld.oneTimeKeyCounts = counts;
      keyNews ||= changed;
    }
  }

  const fallback = [...current.unusedFallbackKeyTypes].sort();
  const fallbackChanged = !sameTypes(fallback, held?.unusedFallbackKeyTypes);
  if (flags.slidingSendsFallbackKeyTypes && (!delta || held === undefined || fallbackChanged)) {
    wire.device_unused_fallback_key_types = fallback;
    nextHeld.unusedFallbackKeyTypes = fallback;
    keyNews ||= fallbackChanged;
  }

  let listNews = false;
  if (current.deviceLists !== undefined) {
    const changed = [...current.deviceLists.changed];
    const left = [...current.deviceLists.left];
    listNews = changed.length > 0 || left.length > 0;
    if (flags.slidingE2eeDeviceLists === "when-pos" || listNews) wire.device_lists = { changed, left };
  }

  // A first response is never "news" for the long-poll: a request without `pos` returns at once.
  return { wire, held: nextHeld, hasNews: listNews || (delta && held !== undefined && keyNews) };
}

function sameCounts(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>> | undefined) {
  if (b === undefined) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => b[k] === a[k]);
}

function sameTypes(a: readonly string[], b: readonly string[] | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every((t, i) => b[i] === t);
}
