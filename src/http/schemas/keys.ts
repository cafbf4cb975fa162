import { z } from "zod";

/*
 * End-to-end key endpoints (spec "End-to-end encryption → Key management API"). These bodies are
 * handed back to the crypto library verbatim (`markRequestAsSent`), which does its own deep
 * parsing, so the schemas keep every field they do not name (loose objects). What they reject is
 * what would make the machine fail in confusing ways: a non-object body, a missing required
 * field, a field of the wrong shape.
 */

const jsonObject = z.record(z.string(), z.unknown());
const perUser = <T extends z.ZodType>(value: T) => z.record(z.string(), value);
const perUserDevice = <T extends z.ZodType>(value: T) => perUser(z.record(z.string(), value));

/** `POST /keys/upload` → how many one-time keys of each algorithm the server holds. */
export const keysUploadResponseSchema = z.looseObject({
  one_time_key_counts: z.record(z.string(), z.number().int().nonnegative()),
});

/** A device's signed `device_keys` object, as `/keys/query` returns it and uploads carry it. */
export const deviceKeysSchema = z.looseObject({
  user_id: z.string(),
  device_id: z.string(),
  algorithms: z.array(z.string()),
  keys: z.record(z.string(), z.string()),
  signatures: perUser(z.record(z.string(), z.string())).optional(),
});

/**
 * `POST /keys/query`. `failures` lists servers that could not be reached (a staleness sign).
 * Each device and key entry is only required to be an object: the crypto library verifies
 * signatures and drops a bad device on its own, whereas rejecting the whole response would let
 * one remote server's broken device block every key query. A feature module that reads an entry
 * itself validates it with its own schema (e.g. built on `deviceKeysSchema`).
 */
export const keysQueryResponseSchema = z.looseObject({
  device_keys: perUserDevice(jsonObject).optional(),
  failures: jsonObject.optional(),
  master_keys: perUser(jsonObject).optional(),
  self_signing_keys: perUser(jsonObject).optional(),
  user_signing_keys: perUser(jsonObject).optional(),
});

/** `POST /keys/claim` → `one_time_keys[user][device][algorithm:key_id]` = key object or string. */
export const keysClaimResponseSchema = z.looseObject({
  one_time_keys: perUserDevice(z.record(z.string(), z.union([z.string(), jsonObject]))),
  failures: jsonObject.optional(),
});

/** `POST /keys/signatures/upload`: `failures` maps user → key or device id → error. */
export const signaturesUploadResponseSchema = z.looseObject({
  failures: perUserDevice(jsonObject).optional(),
});

/** `PUT /room_keys/keys?version=` (spec "Server-side key backups"). */
export const keysBackupResponseSchema = z.looseObject({
  etag: z.string(),
  count: z.number().int().nonnegative(),
});

export type KeysUploadResponse = z.infer<typeof keysUploadResponseSchema>;
export type KeysQueryResponse = z.infer<typeof keysQueryResponseSchema>;
export type KeysClaimResponse = z.infer<typeof keysClaimResponseSchema>;
export type SignaturesUploadResponse = z.infer<typeof signaturesUploadResponseSchema>;
export type KeysBackupResponse = z.infer<typeof keysBackupResponseSchema>;
