import { z } from "zod";
import type { MockControl } from "../control.js";
import type { Profile } from "../profiles.js";
import type { Route } from "../route.js";
import { formatPos } from "../sync/sliding-request.js";
import { parseBody } from "../validation.js";
import { camelCased } from "./control-wire.js";

/**
 * Simplified sliding sync (MSC4186) control calls under `/_mock/` (see
 * `MockControl.expireSlidingSyncConnections` and `slidingSyncConnections`):
 * `POST /_mock/sliding_sync/expire` `{user_id, device_id?, conn_id?}` → `{expired}`, and
 * `GET /_mock/sliding_sync/connections[?user_id=]` → `{connections: [...]}`.
 */

const expireBody = z
  .object({
    user_id: z.string().min(1),
    device_id: z.string().min(1).optional(),
    conn_id: z.string().optional(),
  })
  .strict();

export const slidingSyncControlRoutes: Route<MockControl, Profile>[] = [
  {
    method: "POST",
    pattern: "/_mock/sliding_sync/expire",
    handler: (ctx) => {
      const expired = ctx.state.expireSlidingSyncConnections(camelCased(parseBody(ctx, expireBody)));
      return { status: 200, body: { expired } };
    },
  },
  {
    method: "GET",
    pattern: "/_mock/sliding_sync/connections",
    handler: (ctx) => {
      const userId = ctx.query.get("user_id") ?? undefined;
      const connections = ctx.state.slidingSyncConnections(userId).map((c) => ({
        user_id: c.userId,
        device_id: c.deviceId,
        conn_id: c.connId,
        positions: c.positions.map(formatPos),
        last_used_at: c.lastUsedAt,
      }));
      return { status: 200, body: { connections } };
    },
  },
];
