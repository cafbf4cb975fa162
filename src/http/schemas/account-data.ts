import { z } from "zod";

/**
 * `GET /user/{userId}/account_data/{type}` returns the content object itself. Its shape depends on
 * the type, so each feature validates the content with its own schema; here only "an object".
 */
export const accountDataResponseSchema = z.record(z.string(), z.unknown());

export type AccountDataResponse = z.infer<typeof accountDataResponseSchema>;
