import type { MockControl } from "../control.js";
import type { Profile } from "../profiles.js";
import { MatrixError, type Route } from "../route.js";
import type { ToDeviceInbox } from "../to-device-control.js";

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
      if (since !== null && !DIGITS.test(since)) {
        throw new MatrixError(400, "M_INVALID_PARAM", "since must be a next_batch value");
      }
      if (limit !== null && !DIGITS.test(limit)) {
        throw new MatrixError(400, "M_INVALID_PARAM", "limit must be a non-negative integer");
      }
      let inbox: ToDeviceInbox;
      try {
        inbox = ctx.state.toDeviceInbox(userId, deviceId, {
          ...(since !== null ? { since } : {}),
          ...(limit !== null ? { limit: Number(limit) } : {}),
        });
      } catch (err) {
        // Digits beyond the safe integer range.
        if (err instanceof RangeError) throw new MatrixError(400, "M_INVALID_PARAM", err.message);
        throw err;
      }
      return { status: 200, body: { events: inbox.events, next_batch: inbox.nextBatch } };
    },
  },
];
