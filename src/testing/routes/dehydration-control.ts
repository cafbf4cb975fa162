import { z } from "zod";
import type { MockControl } from "../control.js";
import type { Profile } from "../profiles.js";
import { MatrixError, type Route } from "../route.js";
import type { DehydratedEventsFault } from "../state/dehydrated-device-store.js";
import { parseBody } from "../validation.js";
import { asBadParam, camelCased } from "./control-wire.js";

/**
 * The MSC3814 control calls over HTTP (see `MockControl.injectDehydratedDevice` and
 * `setDehydratedEventsFault`), snake_case on the wire:
 * - `POST /_mock/dehydrated_device` `{user_id, device_id, device_data, device_keys?, one_time_keys?,
 *   fallback_keys?, display_name?}` → `{device_id, device_data}`;
 * - `GET /_mock/dehydrated_device?user_id=` → `{device_id, device_data}` or 404 `M_NOT_FOUND`;
 * - `GET | PUT | DELETE /_mock/dehydrated_events_fault`, PUT body `{kind: "repeat-cursor" |
 *   "never-ends", user_id?, after_pages?, pages?, events_per_page?}`.
 */

const jsonObject = z.record(z.string(), z.unknown());

const injectBody = z
  .object({
    user_id: z.string(),
    device_id: z.string(),
    device_data: z.unknown(),
    device_keys: jsonObject.optional(),
    one_time_keys: jsonObject.optional(),
    fallback_keys: jsonObject.optional(),
    display_name: z.string().nullable().optional(),
  })
  .strict();

const faultBody = z
  .object({
    kind: z.enum(["repeat-cursor", "never-ends"]),
    user_id: z.string().optional(),
    after_pages: z.number().int().nonnegative().optional(),
    pages: z.number().int().positive().optional(),
    events_per_page: z.number().int().nonnegative().optional(),
  })
  .strict();

function faultWire(f: DehydratedEventsFault | undefined) {
  if (!f) return { kind: null };
  return {
    kind: f.kind,
    user_id: f.userId,
    after_pages: f.afterPages,
    events_per_page: f.eventsPerPage,
    pages_left: f.pagesLeft,
    correct_pages_left: f.correctPagesLeft,
    served: f.served,
  };
}

export const dehydrationControlRoutes: Route<MockControl, Profile>[] = [
  {
    method: "POST",
    pattern: "/_mock/dehydrated_device",
    handler: (ctx) => {
      const { user_id, ...options } = parseBody(ctx, injectBody);
      const record = asBadParam(() => ctx.state.injectDehydratedDevice(user_id, camelCased(options)));
      return { status: 200, body: { device_id: record.deviceId, device_data: record.deviceData } };
    },
  },
  {
    method: "GET",
    pattern: "/_mock/dehydrated_device",
    handler: (ctx) => {
      const userId = ctx.query.get("user_id");
      if (userId === null) throw new MatrixError(400, "M_MISSING_PARAM", "Missing query parameter user_id");
      const record = ctx.state.dehydratedDevice(userId);
      if (!record) throw new MatrixError(404, "M_NOT_FOUND", "No dehydrated device available");
      return { status: 200, body: { device_id: record.deviceId, device_data: record.deviceData } };
    },
  },
  {
    method: "GET",
    pattern: "/_mock/dehydrated_events_fault",
    handler: ({ state }) => ({ status: 200, body: faultWire(state.dehydratedEventsFault()) }),
  },
  {
    method: "PUT",
    pattern: "/_mock/dehydrated_events_fault",
    handler: (ctx) => {
      const spec = camelCased(parseBody(ctx, faultBody));
      const fault = asBadParam(() => ctx.state.setDehydratedEventsFault(spec));
      return { status: 200, body: faultWire(fault) };
    },
  },
  {
    method: "DELETE",
    pattern: "/_mock/dehydrated_events_fault",
    handler: ({ state }) => {
      state.clearDehydratedEventsFault();
      return { status: 200, body: {} };
    },
  },
];
