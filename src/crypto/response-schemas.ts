import { z } from "zod";

/**
 * Response schemas for the requests crypto-wasm asks us to send. They are deliberately lenient: the
 * validated body is handed back to crypto-wasm as JSON (`markRequestAsSent`), which does its own
 * deep parsing, so unknown fields pass through untouched. What they do reject is what would make the
 * machine fail in confusing ways or silently misbehave: a non-object body, a missing required field,
 * or a field of the wrong shape. Field names follow the Client-Server API ("End-to-end encryption").
 */

const jsonObject = z.looseObject({});
const recordOf = <T extends z.ZodType>(value: T) => z.record(z.string(), value);

/** `POST /keys/upload`: `one_time_key_counts` is required by the spec. */
export const keysUploadResponseSchema = z.looseObject({
  one_time_key_counts: recordOf(z.number().int().nonnegative()),
});

/** `POST /keys/query`: every field is optional, but present ones must be maps of objects. */
export const keysQueryResponseSchema = z.looseObject({
  device_keys: recordOf(recordOf(jsonObject)).optional(),
  master_keys: recordOf(jsonObject).optional(),
  self_signing_keys: recordOf(jsonObject).optional(),
  user_signing_keys: recordOf(jsonObject).optional(),
  failures: recordOf(z.unknown()).optional(),
});

/** `POST /keys/claim`: `one_time_keys` (user → device → key id → key) is required. */
export const keysClaimResponseSchema = z.looseObject({
  one_time_keys: recordOf(recordOf(recordOf(z.unknown()))),
  failures: recordOf(z.unknown()).optional(),
});

/** `PUT /sendToDevice/{eventType}/{txnId}`: an empty object. */
export const sendToDeviceResponseSchema = jsonObject;

/** `POST /keys/signatures/upload`: `failures` maps user → key or device id → error. */
export const signaturesUploadResponseSchema = z.looseObject({
  failures: recordOf(recordOf(jsonObject)).optional(),
});

/** `PUT /rooms/{roomId}/send/{eventType}/{txnId}`. */
export const roomSendResponseSchema = z.looseObject({ event_id: z.string() });

/** `PUT /room_keys/keys?version=`. */
export const keysBackupResponseSchema = z.looseObject({
  etag: z.string(),
  count: z.number().int().nonnegative(),
});

/** `POST /keys/device_signing/upload`: an empty object on success. */
export const deviceSigningUploadResponseSchema = jsonObject;
