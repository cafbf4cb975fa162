import { z } from "zod";
import { deviceKeysSchema } from "../../http/schemas/keys.js";

/**
 * MSC3814 wire shapes, validated at the edge. `device_data` stays opaque apart from its
 * `algorithm`: it goes back to crypto-wasm exactly as the server stored it.
 */

/** `GET /dehydrated_device` → the user's current device. */
export const dehydratedDeviceResponseSchema = z.looseObject({
  device_id: z.string().min(1),
  device_data: z.looseObject({ algorithm: z.string().min(1) }),
});

/** `PUT` and `DELETE /dehydrated_device` both answer with the id of the device concerned. */
export const dehydratedDeviceIdResponseSchema = z.looseObject({
  device_id: z.string().min(1),
});

/**
 * A page of `…/dehydrated_device/{device_id}/events` (every wire variant), checked only as deep as
 * the pagination needs: the drain validates the events themselves in slices, so a 1 MB page is
 * never walked in one task. `next_batch: null` reads as absent (a server serialising an empty
 * option).
 */
export const dehydratedDeviceEventsResponseSchema = z.looseObject({
  events: z.array(z.unknown()),
  next_batch: z.string().nullable().optional(),
});

const signedKeysSchema = z.record(z.string(), z.union([z.string(), z.looseObject({ key: z.string() })]));

/**
 * The PUT body as MSC3814 wants it, checked before it leaves: Synapse deletes the previous device
 * before validating the new one's `device_keys`, so a bad body would cost the device that holds the
 * user's queued room keys.
 */
export const putDehydratedDeviceBodySchema = z.looseObject({
  device_id: z.string().min(1),
  device_data: z.looseObject({ algorithm: z.string().min(1) }),
  // Synapse ≥1.142 requires the key to be present (null allowed).
  initial_device_display_name: z.string().nullable(),
  device_keys: deviceKeysSchema.extend({
    signatures: z.record(z.string(), z.record(z.string(), z.string())),
    // Inside the signed object, so other clients can tell the device apart (MSC3814, "Device keys").
    dehydrated: z.literal(true),
  }),
  one_time_keys: signedKeysSchema,
  fallback_keys: signedKeysSchema,
});

export type PutDehydratedDeviceBody = z.infer<typeof putDehydratedDeviceBodySchema>;

/** A device as the server hands it over, camelCase; `deviceData` is passed on untouched. */
export interface DehydratedDeviceInfo {
  deviceId: string;
  deviceData: { algorithm: string } & Record<string, unknown>;
}
