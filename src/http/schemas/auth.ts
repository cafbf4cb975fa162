import { z } from "zod";

/** `POST /_matrix/client/v3/login`: a successful login always yields a token and a device. */
export const loginResponseSchema = z.looseObject({
  user_id: z.string(),
  access_token: z.string(),
  device_id: z.string(),
  refresh_token: z.string().optional(),
  expires_in_ms: z.number().int().positive().optional(),
});

export type LoginResponse = z.infer<typeof loginResponseSchema>;

/**
 * `POST /_matrix/client/v3/register`: with `inhibit_login` the server returns only `user_id`,
 * so the token and device are optional here.
 */
export const registerResponseSchema = loginResponseSchema.partial({ access_token: true, device_id: true });

export type RegisterResponse = z.infer<typeof registerResponseSchema>;

/** `POST /_matrix/client/v3/refresh` (spec "Refreshing access tokens"). */
export const refreshResponseSchema = z.looseObject({
  access_token: z.string(),
  refresh_token: z.string().optional(),
  expires_in_ms: z.number().int().positive().optional(),
});

export type RefreshResponse = z.infer<typeof refreshResponseSchema>;
