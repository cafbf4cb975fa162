import { z } from "zod";

/** `GET /_matrix/client/v3/account/whoami`; `device_id` is absent for appservice users. */
export const whoamiResponseSchema = z.looseObject({
  user_id: z.string(),
  device_id: z.string().optional(),
  is_guest: z.boolean().optional(),
});

export type WhoamiResponse = z.infer<typeof whoamiResponseSchema>;
