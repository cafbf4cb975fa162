import type { ProfileName } from "./profile-name.js";

/**
 * Where servers differ on MSC3814 dehydrated devices. Sources: element-hq/synapse v1.156.0 and
 * v1.157.1 (`synapse/rest/client/devices.py` `DehydratedDeviceV2Servlet` /
 * `DehydratedDeviceEventsServlet`, `synapse/handlers/devicemessage.py`
 * `get_events_for_dehydrated_device`, `DeviceInboxWorkerStore.get_messages_for_device`),
 * matrix-construct/tuwunel (`src/api/client/dehydrated_device.rs`,
 * `src/service/users/dehydrated_device.rs`; continuwuity alike) and, for `msc`, the MSC3814 text after its 2026-07
 * change to `GET …/events?from=`. Every field is a `Profile` field, so one can be overridden.
 */
export interface DehydrationFlags {
  /**
   * Whether the MSC3814 endpoints exist. Off: every dehydration path (any method) is an unknown
   * path, 404 `M_UNRECOGNIZED` — Synapse registers the servlets only with
   * `experimental_features.msc3814_enabled`; that 404 is how clients detect "unsupported".
   */
  dehydratedDevices: boolean;
  /** `GET …/events?from=&limit=`: the current MSC and Synapse ≥ 1.157. */
  dehydratedEventsGet: boolean;
  /**
   * `POST …/events` with body `{next_batch?}`: the earlier draft, the only variant of Synapse ≤ 1.156
   * and of ruma-based servers, kept by Synapse 1.157 for compatibility. The MSC no longer has it.
   */
  dehydratedEventsPost: boolean;
  /** Page size when the client names none (Synapse 100; tuwunel `MAX_BATCH_EVENTS` = 50). */
  dehydratedEventsPageSize: number;
  /**
   * `?limit=` is read (Synapse, on GET and POST alike: no upper cap; not an integer or negative →
   * 400 `M_INVALID_PARAM`). ruma's request has no `limit`, so tuwunel ignores it.
   */
  dehydratedEventsLimitParam: boolean;
  /**
   * Pagination tokens. `"d-prefixed"`: Synapse's `d<stream id>`; a token not of that form → 400
   * `M_INVALID_PARAM`. `"decimal"`: tuwunel's bare stream count; an unparsable one fails
   * `str::parse` → 500 `M_UNKNOWN`.
   */
  dehydratedEventsToken: "d-prefixed" | "decimal";
  /**
   * When a GET page carries `next_batch`.
   * - `"synapse"`: when the page is full and its last message is not the newest to-device message
   *   on the whole server (`limited = stream_id != to_token`). So a page that is full by chance
   *   may be followed by an empty page without `next_batch`, and `limit=0` returns an empty page
   *   *without* `next_batch` although messages wait.
   * - `"if-full"`: whenever the page is full; an exactly full last page is always followed by an
   *   empty page without `next_batch` (makes Synapse's sometimes-case deterministic for tests).
   * - `"if-more"`: exactly when more messages for the device follow (the MSC read literally).
   */
  dehydratedGetNextBatch: "synapse" | "if-full" | "if-more";
  /**
   * When a POST page carries `next_batch`. `"always"` (Synapse): always — the end is an empty
   * page, whose token is the server's current to-device position. `"unless-empty"` (tuwunel): the
   * last message's token; omitted only on an empty page.
   */
  dehydratedPostNextBatch: "always" | "unless-empty";
  /**
   * How `PUT /dehydrated_device` checks its body.
   * - `"synapse"`: `device_id`, `device_data.algorithm` (strings) and the
   *   `initial_device_display_name` key (string or null; required since 1.142 though the MSC says
   *   optional) are checked first; then the previous dehydrated device is deleted; only then is
   *   `device_keys` looked for (absent → 400 `M_UNKNOWN`, the old device already gone) and the
   *   display name's length checked (`M_TOO_LARGE`). A device id that names an existing ordinary
   *   device is reused. Malformed keys (Synapse: a 500; the mock: 400 `M_BAD_JSON`) fail the
   *   request after the device row exists.
   * - `"ruma"`: the whole body is parsed first (any failure → 400 `M_BAD_JSON`, nothing deleted);
   *   `device_keys` is required, `device_data` may be any JSON, one-time and fallback key ids must
   *   be `<algorithm>:<id>`; the id of an existing ordinary device → 500 `M_UNKNOWN` when the user
   *   has no dehydrated device.
   * - `"msc"`: the MSC's fields (display name optional, `device_keys` required) validated with
   *   Synapse's error codes before anything is deleted.
   */
  dehydratedPutRules: "synapse" | "ruma" | "msc";
}

const synapse: DehydrationFlags = {
  dehydratedDevices: true,
  dehydratedEventsGet: true,
  dehydratedEventsPost: true,
  dehydratedEventsPageSize: 100,
  dehydratedEventsLimitParam: true,
  dehydratedEventsToken: "d-prefixed",
  dehydratedGetNextBatch: "synapse",
  dehydratedPostNextBatch: "always",
  dehydratedPutRules: "synapse",
};

const tuwunel: DehydrationFlags = {
  dehydratedDevices: true,
  dehydratedEventsGet: false,
  dehydratedEventsPost: true,
  dehydratedEventsPageSize: 50,
  dehydratedEventsLimitParam: false,
  dehydratedEventsToken: "decimal",
  dehydratedGetNextBatch: "if-more",
  dehydratedPostNextBatch: "unless-empty",
  dehydratedPutRules: "ruma",
};

export const dehydrationFlagsByProfile: Readonly<Record<ProfileName, Readonly<DehydrationFlags>>> = {
  "synapse-1.157": synapse,
  "synapse-1.156": { ...synapse, dehydratedEventsGet: false },
  tuwunel,
  // continuwuity's events page reads as tuwunel's does (ruma's POST, `MAX_BATCH_EVENTS = 50`, decimal
  // tokens; its src/api/client/dehydrated_device.rs); the PUT rules are tuwunel's, assumed.
  continuwuity: tuwunel,
  msc: {
    ...synapse,
    dehydratedEventsPost: false,
    dehydratedGetNextBatch: "if-more",
    dehydratedPutRules: "msc",
  },
};
