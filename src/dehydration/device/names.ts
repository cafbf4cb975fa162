import { encodePathSegment } from "../../http/path.js";

/**
 * MSC3814 names. Only unstable paths exist on real servers today; the secret is written under both
 * the stable and the unstable name because Element (matrix-js-sdk 43) reads only the unstable one.
 */

/** Path prefix of every dehydrated-device endpoint (MSC3814, "Unstable prefix"). */
export const DEHYDRATION_PATH_PREFIX = "/_matrix/client/unstable/org.matrix.msc3814.v1";

/** `GET`/`PUT`/`DELETE` of the user's one dehydrated device. */
export const DEHYDRATED_DEVICE_PATH = `${DEHYDRATION_PATH_PREFIX}/dehydrated_device`;

/**
 * `…/dehydrated_device/{device_id}/events`. The id is unpadded base64 (it contains `/` and `+`),
 * so it is percent-encoded as one segment.
 */
export function dehydratedDeviceEventsPath(deviceId: string): string {
  return `${DEHYDRATED_DEVICE_PATH}/${encodePathSegment(deviceId)}/events`;
}

/** Secret-storage names of the dehydration key: stable first, then the one Element reads. */
export const DEHYDRATION_KEY_SECRET_NAMES = {
  stable: "m.dehydrated_device",
  unstable: "org.matrix.msc3814",
} as const;

export type DehydrationKeySecretName =
  (typeof DEHYDRATION_KEY_SECRET_NAMES)[keyof typeof DEHYDRATION_KEY_SECRET_NAMES];

/** `device_data.algorithm` values crypto-wasm can rehydrate (MSC3814 v2 pickles, unstable and stable). */
export const DEHYDRATION_ALGORITHMS = ["org.matrix.msc3814.v2", "m.dehydration.v2"] as const;

/** The dehydration key is the 32-byte key of the pickle's AEAD (MSC3814, "device_data"). */
export const DEHYDRATION_KEY_LENGTH = 32;

/** What Element calls the device; apps may pick another name. */
export const DEFAULT_DEHYDRATED_DEVICE_DISPLAY_NAME = "Dehydrated device";

/** Synapse refuses a longer `initial_device_display_name` with 400 `M_TOO_LARGE`. */
export const MAX_DISPLAY_NAME_LENGTH = 100;
