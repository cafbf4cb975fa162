import { z } from "zod";
import type { MockControl } from "../control.js";
import type { Profile } from "../profiles.js";
import type { Route } from "../route.js";
import { parseBody } from "../validation.js";
import { asBadParam, camelCased } from "./control-wire.js";

/**
 * `POST /_mock/device_keys` `{user_id, device_id, device_keys, one_time_keys?, fallback_keys?,
 * display_name?}` → `{user_id, device_id, replaced}`: `MockControl.injectDeviceKeys` over HTTP,
 * an extra device of the user as a hostile server would list it. What the call refuses
 * (unknown user, a device the user created, keys naming another device, …) is 400
 * `M_INVALID_PARAM`.
 */

const jsonObject = z.record(z.string(), z.unknown());

const injectBody = z
  .object({
    user_id: z.string(),
    device_id: z.string(),
    device_keys: jsonObject,
    one_time_keys: jsonObject.optional(),
    fallback_keys: jsonObject.optional(),
    display_name: z.string().nullable().optional(),
  })
  .strict();

export const injectedDeviceControlRoutes: Route<MockControl, Profile>[] = [
  {
    method: "POST",
    pattern: "/_mock/device_keys",
    handler: (ctx) => {
      const { user_id, ...options } = parseBody(ctx, injectBody);
      const injected = asBadParam(() => ctx.state.injectDeviceKeys(user_id, camelCased(options)));
      return {
        status: 200,
        body: { user_id: injected.userId, device_id: injected.deviceId, replaced: injected.replaced },
      };
    },
  },
];
