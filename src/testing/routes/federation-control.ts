import { z } from "zod";
import type { MockControl } from "../control.js";
import type { Profile } from "../profiles.js";
import { MatrixError, type Route } from "../route.js";
import type { RemoteDeviceListCache } from "../state/remote-device-lists.js";
import { parseBody } from "../validation.js";
import { asBadParam } from "./control-wire.js";

/**
 * Simulated federation over HTTP (`MockControl.addRemoteServer` and the calls after it):
 * - `POST /_mock/remote_servers` `{server_name}` → `{added}`; `GET /_mock/remote_servers` →
 *   `{remote_servers: [{server_name, reachable}]}`;
 * - `PUT /_mock/remote_server_reachable` `{server_name, reachable}` → `{}`;
 * - `PUT /_mock/lose_device_list_updates` `{user_id, lose}` → `{}`;
 * - `GET /_mock/remote_cache?user_id=` and `POST /_mock/resync_remote_user` `{user_id}` → the
 *   cache, snake_case.
 * What the calls refuse (a server not hosted, a user of no hosted remote server, …) is 400
 * `M_INVALID_PARAM`; a missing `user_id` query parameter is 400 `M_MISSING_PARAM`.
 */

const serverBody = z.object({ server_name: z.string() }).strict();
const reachableBody = z.object({ server_name: z.string(), reachable: z.boolean() }).strict();
const loseBody = z.object({ user_id: z.string(), lose: z.boolean() }).strict();
const userBody = z.object({ user_id: z.string() }).strict();

function cacheWire(c: RemoteDeviceListCache) {
  return {
    user_id: c.userId,
    server_name: c.serverName,
    cached: c.cached,
    device_ids: c.deviceIds,
    true_device_ids: c.trueDeviceIds,
    stale: c.stale,
    marked_for_resync: c.markedForResync,
    failing: c.failing,
    losing_updates: c.losingUpdates,
    update_pending: c.updatePending,
    last_resync: c.lastResync,
    next_resync: c.nextResync,
  };
}

export const federationControlRoutes: Route<MockControl, Profile>[] = [
  {
    method: "POST",
    pattern: "/_mock/remote_servers",
    handler: (ctx) => {
      const { server_name } = parseBody(ctx, serverBody);
      return { status: 200, body: { added: asBadParam(() => ctx.state.addRemoteServer(server_name)) } };
    },
  },
  {
    method: "GET",
    pattern: "/_mock/remote_servers",
    handler: ({ state }) => ({
      status: 200,
      body: {
        remote_servers: state
          .remoteServers()
          .map((s) => ({ server_name: s.serverName, reachable: s.reachable })),
      },
    }),
  },
  {
    method: "PUT",
    pattern: "/_mock/remote_server_reachable",
    handler: (ctx) => {
      const { server_name, reachable } = parseBody(ctx, reachableBody);
      asBadParam(() => ctx.state.setRemoteServerReachable(server_name, reachable));
      return { status: 200, body: {} };
    },
  },
  {
    method: "PUT",
    pattern: "/_mock/lose_device_list_updates",
    handler: (ctx) => {
      const { user_id, lose } = parseBody(ctx, loseBody);
      asBadParam(() => ctx.state.loseDeviceListUpdates(user_id, lose));
      return { status: 200, body: {} };
    },
  },
  {
    method: "GET",
    pattern: "/_mock/remote_cache",
    handler: (ctx) => {
      const userId = ctx.query.get("user_id");
      if (userId === null) throw new MatrixError(400, "M_MISSING_PARAM", "Missing query parameter user_id");
      return { status: 200, body: cacheWire(asBadParam(() => ctx.state.remoteCache(userId))) };
    },
  },
  {
    method: "POST",
    pattern: "/_mock/resync_remote_user",
    handler: (ctx) => {
      const { user_id } = parseBody(ctx, userBody);
      return { status: 200, body: cacheWire(asBadParam(() => ctx.state.resyncRemoteUser(user_id))) };
    },
  },
];
