import type { Profile } from "../profiles.js";
import { MatrixError, type MockResponse, type Route, type RouteContext } from "../route.js";
import type { ServerState } from "../state/server-state.js";
import { buildClassicSync } from "../sync/classic-sync.js";
import { defaultSyncFilter, filterSchema, type SyncFilter, toSyncFilter } from "../sync/sync-filter.js";
import {
  currentSyncPosition,
  formatSyncToken,
  isReachable,
  parseSyncToken,
  type SyncPosition,
} from "../sync/sync-token.js";
import { waitForChange } from "../sync/wait-for-change.js";
import { validateValue } from "../validation.js";
import { clientRoute } from "./client-route.js";
import { optionalIntegerParam } from "./matrix-ids.js";

/**
 * Classic `GET /sync` (Client-Server spec), with Synapse's parameter handling
 * (`SyncRestServlet.on_GET`) and long-poll rule (`wait_for_sync_for_user`): an initial or
 * `full_state` sync answers at once; an incremental one waits up to `timeout` ms until there is
 * something to say. Coming back with `since` acknowledges — deletes — the device's to-device
 * messages up to that token (spec, "Send-to-Device messaging": the server may delete them once the
 * client has seen a later `next_batch`).
 *
 * Tokens hold positions of the server's streams; a token that does not parse, or one ahead of the
 * server (say, from an earlier mock instance), is 400 `M_UNKNOWN` "Invalid stream token" — Synapse
 * answers a malformed one so, and accepting a future one would delete messages never delivered.
 */

type Ctx = RouteContext<ServerState, Profile>;

function booleanParam(ctx: Ctx, name: string): boolean {
  const raw = ctx.query.get(name);
  if (raw === null) return false;
  if (raw === "true") return true;
  if (raw === "false") return false;
  throw new MatrixError(
    400,
    "M_INVALID_PARAM",
    `Boolean query parameter '${name}' must be one of ['true', 'false']`,
  );
}

/** The `filter` parameter: inline JSON (starts with `{`) or an uploaded filter's id. */
export function resolveFilter(ctx: Ctx, userId: string): SyncFilter {
  const raw = ctx.query.get("filter");
  if (raw === null || raw === "") return defaultSyncFilter;
  let json: unknown;
  if (raw.startsWith("{")) {
    try {
      json = JSON.parse(raw);
    } catch {
      throw new MatrixError(400, "M_NOT_JSON", "Invalid filter JSON");
    }
  } else {
    json = ctx.state.filters.get(userId, raw);
    if (json === undefined) throw new MatrixError(400, "M_INVALID_PARAM", "No such filter");
  }
  // Synapse validates a filter when it is used; the whole report is one M_BAD_JSON.
  return toSyncFilter(validateValue({ ...ctx.profile, validationErrors: "ruma" }, json, filterSchema));
}

async function sync(ctx: Ctx): Promise<MockResponse> {
  const caller = ctx.caller();
  const { state } = ctx;
  if (ctx.query.has("from")) {
    throw new MatrixError(400, "M_UNKNOWN", "'from' is not a valid query parameter. Did you mean 'since'?");
  }
  const timeout = Math.max(0, optionalIntegerParam(ctx.query, "timeout") ?? 0);
  const presence = ctx.query.get("set_presence");
  if (presence !== null && !["online", "offline", "unavailable"].includes(presence)) {
    throw new MatrixError(
      400,
      "M_INVALID_PARAM",
      "Query parameter 'set_presence' must be one of ['online', 'offline', 'unavailable']",
    );
  }
  const fullState = booleanParam(ctx, "full_state");
  const filter = resolveFilter(ctx, caller.userId);
  const sinceRaw = ctx.query.get("since");
  let since: SyncPosition | undefined;
  if (sinceRaw !== null) {
    since = parseSyncToken(sinceRaw);
    if (!since || !isReachable(since, currentSyncPosition(state))) {
      throw new MatrixError(400, "M_UNKNOWN", "Invalid stream token");
    }
    state.toDevice.acknowledge(caller.userId, caller.deviceId, since.toDevice);
  }

  const request = { userId: caller.userId, deviceId: caller.deviceId, since, fullState, filter };
  const deadline = state.clock.now() + timeout;
  for (;;) {
    const result = buildClassicSync(state, ctx.profile, request);
    const remaining = deadline - state.clock.now();
    if (!result.isEmpty || since === undefined || fullState || remaining <= 0) {
      return { status: 200, body: result.body };
    }
    // Built and subscribed in the same tick, so nothing that happens in between is missed.
    const outcome = await waitForChange(state, {
      userId: caller.userId,
      deviceId: caller.deviceId,
      timeoutMs: remaining,
      signal: ctx.signal,
    });
    if (outcome === "aborted") return { status: 200, body: { next_batch: formatSyncToken(since) } };
    if (outcome === "timeout")
      return { status: 200, body: buildClassicSync(state, ctx.profile, request).body };
  }
}

export const syncRoutes: Route<ServerState, Profile>[] = [clientRoute("GET", "sync", sync)];
