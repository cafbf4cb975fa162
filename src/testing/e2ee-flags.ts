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
  /**
   * How `keys/query` answers for users of the remote servers the mock hosts, and when the server
   * resyncs its copy of their device lists (`state/remote-device-lists.ts`):
   * - `"synapse"`: from the cached copy (`device_lists_remote_cache`), however stale, unless the user
   *   is marked for resync (`device_lists_remote_resync`): then the query resyncs first, and when
   *   that fails the server is listed in `failures` and the user's devices are left out, while the
   *   cached master and self-signing keys are still served (`handlers/e2e_keys.py`
   *   `query_devices`, `get_cross_signing_keys_from_cache`; `storage/databases/main/devices.py`
   *   `get_users_whose_devices_are_cached`). A resync is also started by a federated room
   *   `m.room.encrypted` naming a `device_id` / `sender_key` the copy lacks
   *   (`handlers/federation_event.py`) and a to-device `m.room_key_request` from an unknown
   *   `requesting_device_id` of a user the server shares a room with (`handlers/devicemessage.py`
   *   `_check_for_unknown_devices`) — not by a to-device `m.room.encrypted`.
   * - `"msc"`: from the cached copy, even after a failed resync; while the last resync failed the
   *   server is listed in `failures` too (MSC2638: "relay this error to clients"). Resyncs start as
   *   under `"synapse"` and also on a to-device `m.room.encrypted` whose `sender_key` the copy lacks.
   * - `"federation"`: every query asks the user's server (tuwunel's and continuwuity's
   *   `get_keys_helper`, "Always fetches users from other servers over federation"), so the copy
   *   only decides what `device_lists.changed` announces; nothing starts a resync.
   */
  remoteDeviceLists: "synapse" | "msc" | "federation";
  /**
   * MSC2638 `POST /user/{userId}/devices/refresh` (202, resync afterwards, result through
   * `device_lists.changed`). No server implements it (Synapse, tuwunel `docs/development/compliance/msc.md`
   * "No /devices/refresh endpoint", continuwuity): off, the paths are unknown, 404 `M_UNRECOGNIZED`.
   */
  deviceListRefresh: boolean;
}

export const e2eeFlagsByProfile: Readonly<Record<ProfileName, Readonly<E2eeFlags>>> = {
  "synapse-1.157": {
    seedSignedCurve25519Count: true,
    deviceKeysMismatchErrcode: "M_BAD_JSON",
    oneTimeKeyConflict: "reject",
    remoteDeviceLists: "synapse",
    deviceListRefresh: false,
  },
  "synapse-1.156": {
    seedSignedCurve25519Count: true,
    deviceKeysMismatchErrcode: "M_BAD_JSON",
    oneTimeKeyConflict: "reject",
    remoteDeviceLists: "synapse",
    deviceListRefresh: false,
  },
  tuwunel: {
    seedSignedCurve25519Count: true,
    deviceKeysMismatchErrcode: "M_UNKNOWN",
    oneTimeKeyConflict: "keep-existing",
    remoteDeviceLists: "federation",
    deviceListRefresh: false,
  },
  // continuwuity's `count_one_time_keys` (src/service/users/keys.rs) lists only algorithms it
  // holds keys for, and nothing seeds `signed_curve25519`; its `get_keys_helper`
  // (src/api/client/keys.rs) always asks remote servers; the errcode and conflict flags copy tuwunel.
  continuwuity: {
    seedSignedCurve25519Count: false,
    deviceKeysMismatchErrcode: "M_UNKNOWN",
    oneTimeKeyConflict: "keep-existing",
    remoteDeviceLists: "federation",
    deviceListRefresh: false,
  },
  msc: {
    seedSignedCurve25519Count: false,
    deviceKeysMismatchErrcode: "M_BAD_JSON",
    oneTimeKeyConflict: "reject",
    remoteDeviceLists: "msc",
    deviceListRefresh: true,
  },
};
