import { z } from "zod";
import type { MockControl } from "../control.js";
import type { Profile } from "../profiles.js";
import { MatrixError, type Route } from "../route.js";
import type { ToDeviceMessages } from "../state/to-device-delivery.js";
import { parseBody } from "../validation.js";
import { asBadParam } from "./control-wire.js";

/**
 * To-device controls over HTTP:
 * - `GET /_mock/to_device/{userId}/{deviceId}?since=&limit=` → `{events, next_batch}`: a device's
 *   to-device inbox, read without acknowledging (see `MockControl.toDeviceInbox`). An unknown
 *   device → 404 `M_NOT_FOUND`; a malformed `since` or `limit` → 400 `M_INVALID_PARAM`.
 * - `POST /_mock/send_to_device_as` `{user_id, device_id, event_type, messages}` → `{delivered}`:
 *   messages delivered as though that device sent them (`MockControl.sendToDeviceAs`). An unknown
 *   sender device or a malformed `messages` → 400 `M_INVALID_PARAM`, as the call refuses them.
 */

const DIGITS = /^\d+$/;

// `messages` is checked by `sendToDeviceAs` itself, so both ways in refuse the same bodies alike.
const sendAsBody = z
  .object({ user_id: z.string(), device_id: z.string(), event_type: z.string(), messages: z.unknown() })
  .strict();

export const toDeviceControlRoutes: Route<MockControl, Profile>[] = [
  {
    method: "GET",
    pattern: "/_mock/to_device/{userId}/{deviceId}",
    handler: (ctx) => {
      const userId = ctx.params.userId ?? "";
      const deviceId = ctx.params.deviceId ?? "";
      if (!ctx.state.server.state.accounts.hasDevice(userId, deviceId)) {
        throw new MatrixError(404, "M_NOT_FOUND", "Unknown device");
      }
      const since = ctx.query.get("since");
      const limit = ctx.query.get("limit");
      // `Number` would read "" as 0 and " 5" as 5; `toDeviceInbox` checks `since` and the range.
      if (limit !== null && !DIGITS.test(limit)) {
        throw new MatrixError(400, "M_INVALID_PARAM", "limit must be a non-negative integer");
      }
      const inbox = asBadParam(() =>
        ctx.state.toDeviceInbox(userId, deviceId, {
          ...(since !== null ? { since } : {}),
          ...(limit !== null ? { limit: Number(limit) } : {}),
        }),
      );
      return { status: 200, body: { events: inbox.events, next_batch: inbox.nextBatch } };
    },
  },
  {
    method: "POST",
    pattern: "/_mock/send_to_device_as",
    handler: (ctx) => {
      const body = parseBody(ctx, sendAsBody);
      const delivered = asBadParam(() =>
        ctx.state.sendToDeviceAs(
          { userId: body.user_id, deviceId: body.device_id },
          body.event_type,
          body.messages as ToDeviceMessages,
        ),
      );
      return { status: 200, body: { delivered } };
    },
  },
];
