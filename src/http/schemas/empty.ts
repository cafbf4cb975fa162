import { z } from "zod";

/**
 * An endpoint that answers `{}` on success: `PUT /sendToDevice/{type}/{txnId}`, account-data PUTs,
 * `POST /keys/device_signing/upload`. Servers may add fields; only "a JSON object" is required.
 */
export const emptyResponseSchema = z.looseObject({});

export type EmptyResponse = z.infer<typeof emptyResponseSchema>;
