import type { MockControl } from "../control.js";
import type { Profile } from "../profiles.js";
import { MatrixError, type Route } from "../route.js";
import { asBadParam } from "./control-wire.js";

/**
 * `GET /_mock/to_device/{userId}/{deviceId}?since=&limit=` → `{events, next_batch}`: a device's
 * to-device inbox, read without acknowledging (see `MockControl.toDeviceInbox`). An unknown
 * device → 404 `M_NOT_FOUND`; a malformed `since` or `limit` → 400 `M_INVALID_PARAM`.
 */

const DIGITS = /^\d+$/;

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
];
