import type { ProfileName } from "./profile-name.js";

/**
 * Where real servers differ on the key and to-device endpoints (element-hq/synapse v1.157.1,
 * matrix-construct/tuwunel 1.9, continuwuity/continuwuity@09073235; `msc` = the Client-Server spec
 * read literally). Every field is a `Profile` field, so one can be overridden.
 */
export interface E2eeFlags {
  /**
   * `one_time_key_counts` always holds `signed_curve25519` (0 when none are left). Synapse seeds it
   * (`count_e2e_one_time_keys`), and so does tuwunel since clients that read an omitted count as
   * "unknown" never replenish; the spec only lists algorithms the server holds keys for.
   */
  seedSignedCurve25519Count: boolean;
  /**
   * Error code when `device_keys.user_id` / `device_id` are not the caller's: Synapse `M_BAD_JSON`
   * (`KeyUploadServlet`), tuwunel `M_UNKNOWN` (`upload_keys.rs`).
   */
  deviceKeysMismatchErrcode: "M_BAD_JSON" | "M_UNKNOWN";
  /**
   * A one-time key id that already holds a different key: Synapse refuses the upload with 400
   * ("One time key ... already exists"); tuwunel silently keeps the stored key.
   */
  oneTimeKeyConflict: "reject" | "keep-existing";
}

export const e2eeFlagsByProfile: Readonly<Record<ProfileName, Readonly<E2eeFlags>>> = {
  "synapse-1.157": {
    seedSignedCurve25519Count: true,
    deviceKeysMismatchErrcode: "M_BAD_JSON",
    oneTimeKeyConflict: "reject",
  },
  "synapse-1.156": {
    seedSignedCurve25519Count: true,
    deviceKeysMismatchErrcode: "M_BAD_JSON",
    oneTimeKeyConflict: "reject",
  },
  tuwunel: {
    seedSignedCurve25519Count: true,
    deviceKeysMismatchErrcode: "M_UNKNOWN",
    oneTimeKeyConflict: "keep-existing",
  },
  // continuwuity's `count_one_time_keys` (src/service/users/keys.rs) lists only algorithms it
  // holds keys for, and nothing seeds `signed_curve25519`; the other two copy tuwunel (same lineage).
  continuwuity: {
    seedSignedCurve25519Count: false,
    deviceKeysMismatchErrcode: "M_UNKNOWN",
    oneTimeKeyConflict: "keep-existing",
  },
  msc: {
    seedSignedCurve25519Count: false,
    deviceKeysMismatchErrcode: "M_BAD_JSON",
    oneTimeKeyConflict: "reject",
  },
};
