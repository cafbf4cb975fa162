/**
 * Server profiles: plain data describing where real homeservers differ, so the SDK is tested
 * against every variant instead of one server's habits. Values come from the servers' sources
 * (element-hq/synapse v1.156.0 / v1.157.1, matrix-construct/tuwunel 1.9,
 * continuwuity/continuwuity@09073235) and, for `msc`, from the spec and MSC texts as written. To add
 * a flag: add the field to `Profile`, then a value to each of the profiles below.
 */

import { type DehydrationFlags, dehydrationFlagsByProfile } from "./dehydration-flags.js";
import { type E2eeFlags, e2eeFlagsByProfile } from "./e2ee-flags.js";
import type { ProfileName } from "./profile-name.js";

export type { ProfileName } from "./profile-name.js";

export interface CorsProfile {
  /** Status of an `OPTIONS` preflight: Synapse answers 204, tower-http (tuwunel) 200. */
  preflightStatus: 200 | 204;
  allowMethods: string;
  allowHeaders: string;
  exposeHeaders: string;
  /** `Access-Control-Max-Age` on preflights, when the server sends one. */
  maxAgeSeconds: number | null;
}

/**
 * Flags of the key endpoints and of dehydrated devices (MSC3814) are declared, with their sources,
 * in e2ee-flags.ts and dehydration-flags.ts.
 */
export interface Profile extends E2eeFlags, DehydrationFlags {
  name: string;
  /** `versions` in `GET /_matrix/client/versions`. */
  versions: readonly string[];
  /** `unstable_features` in `GET /_matrix/client/versions`. */
  unstableFeatures: Readonly<Record<string, boolean>>;
  /** `capabilities` in `GET /_matrix/client/v3/capabilities`. */
  capabilities: Readonly<Record<string, unknown>>;
  cors: Readonly<CorsProfile>;

  /** Bodies above this many bytes get 413 `M_TOO_LARGE` (Synapse: 200 × 64 KiB; tuwunel: 24 MiB). */
  maxRequestBodyBytes: number;
  /**
   * How a body that fails validation is reported. `"synapse"`: exactly one missing field →
   * `M_MISSING_PARAM`, exactly one rejected value → `M_INVALID_PARAM`, anything else → `M_BAD_JSON`
   * (synapse/http/servlet.py `validate_json_object`). `"ruma"`: every failure → `M_BAD_JSON`.
   */
  validationErrors: "synapse" | "ruma";
  /** tuwunel treats an empty POST/DELETE body as `{}`; Synapse answers 400 `M_NOT_JSON`. */
  emptyBodyIsEmptyObject: boolean;
  /**
   * Known path, wrong method: Synapse and tuwunel (whose router rewrites axum's bare 405, see its
   * `router/request.rs`) send 405 `M_UNRECOGNIZED`; `false` models a plain proxy or framework 405.
   */
  wrongMethodHasErrorBody: boolean;
  /** `error` text of the 404 for an unknown path. */
  unknownPathMessage: string;

  /**
   * Whether `m.login.dummy` completes user-verification UIA (device deletion, cross-signing
   * upload). Real servers offer only `m.login.password` there; the mock also offers dummy by
   * default so headless tests need not keep passwords around. Set false to be strict.
   */
  dummyAuthForUserVerification: boolean;
  /** Synapse still returns the deprecated `home_server` from `/login` and `/register`. */
  loginReturnsHomeServer: boolean;

  /** Longest device display name accepted; longer → 400 `M_TOO_LARGE` (Synapse 100). */
  deviceDisplayNameMaxLength: number | null;
  /** `PUT /devices/{id}` with `display_name: null`: tuwunel clears the name, Synapse keeps it. */
  nullDisplayNameClears: boolean;
  /** Synapse's device objects (`GET /devices`) carry `user_id`; ruma's do not. */
  deviceIncludesUserId: boolean;
  /** `error` text of the 404 for an unknown device. */
  unknownDeviceMessage: string;
  /**
   * Whether `PUT /devices/{id}` is a device-list change, so the owner's room-mates and other
   * devices see the owner in `device_lists.changed`. Synapse's `DeviceHandler.update_device`
   * (synapse/handlers/device.py) calls `notify_device_update` on every PUT, even one that changes
   * nothing. tuwunel and continuwuity bump only the federation device-list version
   * (`userid_devicelistversion`), not the key-change stream `/sync` reads, so clients never hear.
   */
  deviceRenameIsDeviceListChange: boolean;

  /** MSC3391: account data with content `{}` reads as deleted (404). Off in Synapse by default. */
  emptyAccountDataIsDeleted: boolean;
  /** Status for PUT of `m.fully_read` / `m.push_rules` as account data (Synapse 405, tuwunel 400). */
  reservedAccountDataStatus: 400 | 405;
  /** `error` text of `GET /room_keys/version` when the user has no backup. */
  noBackupMessage: string;

  // Simplified sliding sync (MSC4186) e2ee extension (MSC3884); see sync/sliding-e2ee.ts.
  /**
   * `"always"`: both key fields in every response (Synapse, `encode_extensions`). `"when-changed"`:
   * MSC3884 delta semantics — the first response on a connection carries both, later ones only a
   * field whose value changed since the `pos` (an omitted field means unchanged; `[]` fallback
   * types means the fallback key was used).
   */
  slidingE2eeKeyFields: "always" | "when-changed";
  /**
   * `"when-pos"`: `device_lists` in every response to a request with `pos`, possibly empty, never
   * without one (Synapse). `"when-nonempty"`: only when it lists someone (ruma skips empty lists;
   * MSC3884 allows omitting it).
   */
  slidingE2eeDeviceLists: "when-pos" | "when-nonempty";
  /**
   * Leave zero counts out of `device_one_time_keys_count`, and the field when none is left — what
   * tuwunel did, so clients reading an omitted field as "unchanged" never replenished their keys.
   */
  slidingOmitZeroKeyCounts: boolean;
  /**
   * Whether `device_unused_fallback_key_types` is sent at all. continuwuity's e2ee extension sets
   * it to `None` (src/api/client/sync/v5.rs), so a client never learns its fallback key was used.
   */
  slidingSendsFallbackKeyTypes: boolean;
  /**
   * Leave the `e2ee` object out when it has nothing in it: ruma serialises the extension with
   * `skip_serializing_if = "E2EE::is_empty"` (no counts, no fallback field, no device lists).
   * Synapse always sends it when enabled.
   */
  slidingOmitEmptyE2ee: boolean;

  // Simplified sliding sync `to_device` extension (MSC3885); see sync/sliding-to-device.ts.
  /**
   * What the request's `to_device.since` means. `"since"` (Synapse, MSC3885): it acknowledges —
   * deletes — the device's messages up to it; absent is 0. `"since-else-pos"` (tuwunel,
   * src/api/client/sync/v5/extensions/to_device.rs): the same when it parses as a `u64`, otherwise
   * the to-device position of the connection's `pos` stands in, so a client that leaves `since`
   * out loses everything up to its `pos`; a `since` ahead of the stream is clamped to it.
   * `"pos"` (continuwuity, src/api/client/sync/v5.rs): `since` is ignored; messages up to `pos`
   * are deleted and those after it sent.
   */
  slidingToDeviceSince: "since" | "since-else-pos" | "pos";
  /** Serve every waiting message whatever `limit` says (tuwunel, continuwuity); Synapse caps at `min(limit, 100)`. */
  slidingToDeviceIgnoresLimit: boolean;
  /**
   * The extension with no events: `"empty-events"` sends `{next_batch, events: []}` (Synapse);
   * `"omit-extension"` leaves `to_device` out (tuwunel returns `None`); `"omit-events"` sends
   * `{next_batch}` (continuwuity: ruma skips an empty `events`).
   */
  slidingToDeviceWhenEmpty: "empty-events" | "omit-extension" | "omit-events";
  /**
   * `to_device.limit: 0` answers no events and the current stream position as `next_batch`, so the
   * client's next `since` deletes every message it never received. Synapse's
   * `get_messages_for_device` (synapse/storage/databases/main/deviceinbox.py) runs `LIMIT 0`, finds
   * `rowcount == limit` and returns its `last_processed_stream_pos`, which starts at the head.
   * Off: `next_batch` stays at `since`, so nothing is lost.
   */
  toDeviceLimitZeroJumpsToHead: boolean;
}

export type ProfileOverrides = Partial<Omit<Profile, "name">>;

const SYNAPSE_VERSIONS = [
  "r0.0.1",
  "r0.1.0",
  "r0.2.0",
  "r0.3.0",
  "r0.4.0",
  "r0.5.0",
  "r0.6.0",
  "r0.6.1",
  "v1.1",
  "v1.2",
  "v1.3",
  "v1.4",
  "v1.5",
  "v1.6",
  "v1.7",
  "v1.8",
  "v1.9",
  "v1.10",
  "v1.11",
  "v1.12",
] as const;

/** Synapse 1.156 with a default config (experimental flags off, simplified sliding sync on). */
const SYNAPSE_1_156_UNSTABLE: Record<string, boolean> = {
  "org.matrix.label_based_filtering": true,
  "org.matrix.e2e_cross_signing": true,
  "org.matrix.msc2432": true,
  "uk.half-shot.msc2666.query_mutual_rooms.stable": true,
  "io.element.e2ee_forced.public": false,
  "io.element.e2ee_forced.private": false,
  "io.element.e2ee_forced.trusted_private": false,
  "org.matrix.msc3026.busy_presence": false,
  "org.matrix.msc2285.stable": true,
  "org.matrix.msc3827.stable": true,
  "org.matrix.msc3440.stable": true,
  "org.matrix.msc3771": true,
  "org.matrix.msc3773": false,
  "fi.mau.msc2815": false,
  "fi.mau.msc2659.stable": true,
  "org.matrix.msc3882": false,
  "org.matrix.msc3881": false,
  "org.matrix.msc3874": false,
  "org.matrix.msc3912": false,
  "org.matrix.msc3981": true,
  "org.matrix.msc3391": false,
  "org.matrix.msc4069": false,
  "org.matrix.msc4028": false,
  "org.matrix.msc4108": false,
  "org.matrix.msc4140": false,
  "org.matrix.msc4143": false,
  "org.matrix.simplified_msc3575": true,
  "uk.tcpip.msc4133": false,
  "uk.tcpip.msc4133.stable": true,
  "org.matrix.msc4155": false,
  "org.matrix.msc4306": false,
  "com.beeper.msc4169": false,
  "org.matrix.msc4354": false,
  "org.matrix.msc4380.stable": true,
  "org.matrix.msc4445.initial_sync_timeline_topological_ordering": true,
  "uk.timedout.msc4491.create_room_invite_reasons": false,
};

/** 1.157 moved /versions to Rust and added MSC4446 to the map. */
const SYNAPSE_1_157_UNSTABLE: Record<string, boolean> = {
  ...SYNAPSE_1_156_UNSTABLE,
  "com.beeper.msc4446": false,
};

/** tuwunel lists only what it supports, each `true` (src/api/client/versions.rs). */
const TUWUNEL_UNSTABLE: Record<string, boolean> = Object.fromEntries(
  [
    "org.matrix.e2e_cross_signing",
    "org.matrix.msc2285.stable",
    "fi.mau.msc2659.stable",
    "uk.half-shot.msc2666.query_mutual_rooms",
    "uk.half-shot.msc2666.query_mutual_rooms.stable",
    "org.matrix.msc2836",
    "org.matrix.msc3030",
    "org.matrix.msc2946",
    "org.matrix.msc3026.busy_presence",
    "org.matrix.msc3575",
    "org.matrix.msc3814",
    "org.matrix.msc3827",
    "org.matrix.msc3827.stable",
    "org.matrix.msc3916.stable",
    "org.matrix.msc3952_intentional_mentions",
    "org.matrix.msc4143",
    "uk.tcpip.msc4133",
    "uk.tcpip.msc4133.stable",
    "us.cloke.msc4175",
    "us.cloke.msc4175.stable",
    "org.matrix.msc4180",
    "org.matrix.simplified_msc3575",
    "fi.mau.msc2815",
    "org.matrix.msc3861",
    "org.matrix.msc2964",
    "org.matrix.msc2965",
    "org.matrix.msc2966",
    "org.matrix.msc2967",
    "org.matrix.msc3824",
    "com.beeper.msc4169",
    "org.matrix.msc4380",
    "org.matrix.msc4380.stable",
    "net.zemos.msc4383",
    "org.matrix.msc4284",
    "org.matrix.msc3771",
    "org.matrix.msc3773",
    "org.matrix.msc3440.stable",
    "org.matrix.msc4222",
  ].map((k) => [k, true]),
);

const STABLE_ROOM_VERSIONS = Object.fromEntries(
  ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"].map((v) => [v, "stable"]),
);

/** Synapse's `KNOWN_ROOM_VERSIONS` (rust/src/room_versions.rs) with its default, "10". */
const ROOM_VERSIONS = {
  default: "10",
  available: {
    ...STABLE_ROOM_VERSIONS,
    "org.matrix.msc3389.10": "unstable",
    "org.matrix.msc1767.10": "unstable",
    "org.matrix.msc3757.10": "unstable",
    "org.matrix.msc3757.11": "unstable",
    "org.matrix.hydra.11": "unstable",
    "org.matrix.msc4242.12": "unstable",
  },
};

const SYNAPSE_CAPABILITIES = {
  "m.room_versions": ROOM_VERSIONS,
  "m.change_password": { enabled: true },
  "m.set_displayname": { enabled: true },
  "m.set_avatar_url": { enabled: true },
  "m.3pid_changes": { enabled: true },
  "m.get_login_token": { enabled: false },
  "m.profile_fields": { enabled: true },
  "org.matrix.msc4140.delayed_events": { max_delay_ms: 2_592_000_000, max_scheduled: 100 },
};

const SYNAPSE_CORS: CorsProfile = {
  preflightStatus: 204,
  allowMethods: "GET, HEAD, POST, PUT, DELETE, OPTIONS",
  allowHeaders: "X-Requested-With, Content-Type, Authorization, Date",
  exposeHeaders: "Synapse-Trace-Id, Server",
  maxAgeSeconds: null,
};

const synapse157: Profile = {
  name: "synapse-1.157",
  ...e2eeFlagsByProfile["synapse-1.157"],
  ...dehydrationFlagsByProfile["synapse-1.157"],
  versions: SYNAPSE_VERSIONS,
  unstableFeatures: SYNAPSE_1_157_UNSTABLE,
  capabilities: SYNAPSE_CAPABILITIES,
  cors: SYNAPSE_CORS,
  maxRequestBodyBytes: 200 * 65_536,
  validationErrors: "synapse",
  emptyBodyIsEmptyObject: false,
  wrongMethodHasErrorBody: true,
  unknownPathMessage: "Unrecognized request",
  dummyAuthForUserVerification: true,
  loginReturnsHomeServer: true,
  deviceDisplayNameMaxLength: 100,
  nullDisplayNameClears: false,
  deviceIncludesUserId: true,
  unknownDeviceMessage: "No device found",
  deviceRenameIsDeviceListChange: true,
  emptyAccountDataIsDeleted: false,
  reservedAccountDataStatus: 405,
  noBackupMessage: "No backup found",
  slidingE2eeKeyFields: "always",
  slidingE2eeDeviceLists: "when-pos",
  slidingOmitZeroKeyCounts: false,
  slidingSendsFallbackKeyTypes: true,
  slidingOmitEmptyE2ee: false,
  slidingToDeviceSince: "since",
  slidingToDeviceIgnoresLimit: false,
  slidingToDeviceWhenEmpty: "empty-events",
  toDeviceLimitZeroJumpsToHead: true,
};

const synapse156: Profile = {
  ...synapse157,
  name: "synapse-1.156",
  ...e2eeFlagsByProfile["synapse-1.156"],
  ...dehydrationFlagsByProfile["synapse-1.156"],
  unstableFeatures: SYNAPSE_1_156_UNSTABLE,
};

const tuwunel: Profile = {
  name: "tuwunel",
  ...e2eeFlagsByProfile.tuwunel,
  ...dehydrationFlagsByProfile.tuwunel,
  versions: [...SYNAPSE_VERSIONS, "v1.13", "v1.14", "v1.15", "v1.16", "v1.17", "v1.18", "v1.19"],
  unstableFeatures: TUWUNEL_UNSTABLE,
  capabilities: {
    // tuwunel (src/core/config/room_version.rs): 3-5 unstable, 6-12 stable, default 11.
    "m.room_versions": {
      default: "11",
      available: {
        ...Object.fromEntries(["3", "4", "5"].map((v) => [v, "unstable"])),
        ...Object.fromEntries(["6", "7", "8", "9", "10", "11", "12"].map((v) => [v, "stable"])),
      },
    },
    "m.change_password": { enabled: true },
    "m.set_displayname": { enabled: true },
    "m.set_avatar_url": { enabled: true },
    "m.3pid_changes": { enabled: false },
    "m.get_login_token": { enabled: false },
    "m.profile_fields": { enabled: true },
  },
  cors: {
    preflightStatus: 200,
    allowMethods: "DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT",
    allowHeaders: "accept,authorization,content-type,if-match,if-none-match,origin,x-requested-with",
    exposeHeaders: "etag",
    maxAgeSeconds: 86_400,
  },
  maxRequestBodyBytes: 24 * 1024 * 1024,
  validationErrors: "ruma",
  emptyBodyIsEmptyObject: true,
  wrongMethodHasErrorBody: true,
  unknownPathMessage: "Not Found",
  dummyAuthForUserVerification: true,
  loginReturnsHomeServer: false,
  deviceDisplayNameMaxLength: null,
  nullDisplayNameClears: true,
  deviceIncludesUserId: false,
  unknownDeviceMessage: "Device not found.",
  deviceRenameIsDeviceListChange: false,
  emptyAccountDataIsDeleted: true,
  reservedAccountDataStatus: 400,
  noBackupMessage: "Key backup does not exist.",
  slidingE2eeKeyFields: "always",
  slidingE2eeDeviceLists: "when-nonempty",
  slidingOmitZeroKeyCounts: true,
  slidingSendsFallbackKeyTypes: true,
  slidingOmitEmptyE2ee: true,
  slidingToDeviceSince: "since-else-pos",
  slidingToDeviceIgnoresLimit: true,
  slidingToDeviceWhenEmpty: "omit-extension",
  // The limit is ignored, so a zero one is too.
  toDeviceLimitZeroJumpsToHead: false,
};

/**
 * continuwuity (continuwuity/continuwuity@09073235), a sibling of tuwunel. Read from its source:
 * `versions` and `unstable_features` (src/core/matrix/versions.rs), the request-size default
 * (src/core/config/mod.rs), the sliding sync habits (src/api/client/sync/v5.rs), the device and
 * backup error texts, and the unseeded key counts. Everything else — capabilities, CORS, validation
 * and the other error shapes — is tuwunel's, assumed.
 */
const continuwuity: Profile = {
  ...tuwunel,
  name: "continuwuity",
  ...e2eeFlagsByProfile.continuwuity,
  ...dehydrationFlagsByProfile.continuwuity,
  versions: [
    ...SYNAPSE_VERSIONS.filter((v) => !["v1.6", "v1.7", "v1.9", "v1.10"].includes(v)),
    "v1.13",
    "v1.14",
    "v1.15",
    "v1.16",
    "v1.17",
    "v1.18",
  ],
  unstableFeatures: {
    "uk.half-shot.msc2666.query_mutual_rooms": true,
    "uk.half-shot.msc2666.query_mutual_rooms.stable": true,
    "org.matrix.simplified_msc3575": true,
    "org.matrix.msc4155": true,
    "computer.gingershaped.msc4466": true,
  },
  maxRequestBodyBytes: 20 * 1024 * 1024,
  slidingSendsFallbackKeyTypes: false,
  slidingToDeviceSince: "pos",
  slidingToDeviceWhenEmpty: "omit-events",
};

/** The Client-Server spec and the MSCs read literally: errors as the spec's prose names them. */
const msc: Profile = {
  ...synapse157,
  name: "msc",
  ...e2eeFlagsByProfile.msc,
  ...dehydrationFlagsByProfile.msc,
  versions: [...SYNAPSE_VERSIONS, "v1.13", "v1.14", "v1.15", "v1.16", "v1.17"],
  unstableFeatures: {
    "org.matrix.e2e_cross_signing": true,
    // MSC2638 device-list refresh (flag `deviceListRefresh`); the MSC names no feature key, this one
    // follows the `org.matrix.mscNNNN` habit.
    "org.matrix.msc2638": true,
    "org.matrix.msc3391": true,
    "org.matrix.msc3814": true,
    "org.matrix.simplified_msc3575": true,
  },
  capabilities: {
    "m.room_versions": { default: "11", available: STABLE_ROOM_VERSIONS },
    "m.change_password": { enabled: true },
    "m.set_displayname": { enabled: true },
    "m.set_avatar_url": { enabled: true },
    "m.3pid_changes": { enabled: false },
    "m.get_login_token": { enabled: false },
  },
  loginReturnsHomeServer: false,
  deviceDisplayNameMaxLength: null,
  deviceIncludesUserId: false,
  unknownDeviceMessage: "Device not found",
  emptyAccountDataIsDeleted: true,
  noBackupMessage: "No current backup version",
  slidingE2eeKeyFields: "when-changed",
  slidingE2eeDeviceLists: "when-nonempty",
  // `keys/query` answers the new name (`unsigned.device_display_name`), so clients should re-fetch;
  // `deviceRenameIsDeviceListChange` stays Synapse's `true`.
  // MSC3885 does not make `limit: 0` move `next_batch`: nothing is skipped.
  toDeviceLimitZeroJumpsToHead: false,
};

export const profiles: Readonly<Record<ProfileName, Readonly<Profile>>> = {
  "synapse-1.157": synapse157,
  "synapse-1.156": synapse156,
  tuwunel,
  continuwuity,
  msc,
};

export const defaultProfileName: ProfileName = "synapse-1.157";

export function isProfileName(value: string): value is ProfileName {
  return Object.hasOwn(profiles, value);
}

/** A profile by name with single flags replaced; the stored profiles are never mutated. */
export function resolveProfile(
  name: ProfileName = defaultProfileName,
  overrides: ProfileOverrides = {},
): Profile {
  const base = profiles[name];
  return { ...base, ...overrides, name: base.name };
}
