import type { Profile } from "../profiles.js";
import { type Caller, MatrixError, type MockResponse, type Route, type RouteContext } from "../route.js";
import type { ServerState } from "../state/server-state.js";
import { currentDeviceListPosition, deviceListDelta } from "../sync/device-list-delta.js";
import type { HeldE2eeFields, SlidingConnectionState } from "../sync/sliding-connection-state.js";
import { e2eeExtension } from "../sync/sliding-e2ee.js";
import { formatPos, parseSlidingSyncRequest, type SlidingSyncRequest } from "../sync/sliding-request.js";
import { slidingRooms } from "../sync/sliding-rooms.js";
import { toDeviceExtension } from "../sync/sliding-to-device.js";
import { formatPaginationToken } from "../sync/sync-token.js";
import { waitForChange } from "../sync/wait-for-change.js";
import { oneTimeKeyCounts } from "./keys.js";

/**
 * `POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync` — simplified sliding sync
 * (MSC4186) with the `e2ee` (MSC3884) and `to_device` (MSC3885) extensions, as Synapse's
 * `SlidingSyncRestServlet` and `SlidingSyncHandler.wait_for_sync_for_user` answer it:
 *
 * - `pos` and `timeout` are query parameters; a `pos` in the body is ignored;
 * - a `pos` that does not parse → 400 `M_UNKNOWN`; one the connection (user, device, `conn_id`)
 *   does not know — expired, superseded, another user's or device's — → 400 `M_UNKNOWN_POS`, and
 *   the client must start over without `pos` (and treat every tracked device list as stale);
 * - the response is computed at once; it is returned at once when it carries news, when the
 *   request had no `pos`, or when `timeout` is 0; otherwise the request waits for news until
 *   `timeout` ms (on the server's clock) have passed, then returns what there is.
 *
 * Extension settings are not sticky here, as in Synapse: a request enables what it names.
 */

type Ctx = RouteContext<ServerState, Profile>;

/** The path Synapse serves (the merged MSC names `/_matrix/client/v4/sync`, which no server serves yet). */
export const SLIDING_SYNC_PATH = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync";

interface Computed {
  body: Record<string, unknown>;
  next: SlidingConnectionState;
  hasNews: boolean;
}

async function slidingSync(ctx: Ctx): Promise<MockResponse> {
  const caller = ctx.caller();
  const request = parseSlidingSyncRequest(ctx);
  const key = { userId: caller.userId, deviceId: caller.deviceId, connId: request.connId };
  const { state } = ctx;

  let from: SlidingConnectionState | undefined;
  if (request.pos !== undefined) {
    from = state.slidingSync.resume(key, request.pos);
    if (from === undefined) throw unknownPosition();
  }

  const deadline = state.clock.now() + request.timeoutMs;
  let computed = compute(ctx, caller, request, from);
  while (!computed.hasNews && from !== undefined) {
    const remaining = deadline - state.clock.now();
    if (remaining <= 0) break;
    const outcome = await waitForChange(state, {
      userId: caller.userId,
      deviceId: caller.deviceId,
      timeoutMs: remaining,
      signal: ctx.signal,
      watch: {
        toDevice: request.toDevice !== undefined,
        // Key counts and device lists; room membership moves device lists too.
        keys: request.e2ee,
        rooms: request.e2ee || request.lists.size > 0 || request.roomSubscriptions.size > 0,
        accountData: false,
      },
    });
    // Synapse does not serialise a response for a client that went away, nor record a position.
    if (outcome === "aborted") return { status: 200, body: {} };
    computed = compute(ctx, caller, request, from);
    if (outcome === "timeout") break;
  }

  const position = state.slidingSync.record(key, request.pos, computed.next);
  // The connection was expired while the request waited: its positions are gone for good.
  if (position === undefined) throw unknownPosition();
  return { status: 200, body: { pos: formatPos(position), ...computed.body } };
}

function compute(
  ctx: Ctx,
  caller: Caller,
  request: SlidingSyncRequest,
  from: SlidingConnectionState | undefined,
): Computed {
  const { state, profile } = ctx;
  const streams = currentDeviceListPosition(state);
  const toDevicePosition = state.toDevice.position;
  const extensions: Record<string, unknown> = {};
  let hasNews = false;

  if (request.toDevice !== undefined) {
    const toDevice = toDeviceExtension(
      state.toDevice,
      caller.userId,
      caller.deviceId,
      request.toDevice,
      from?.toDevice ?? 0,
      profile,
    );
    if (toDevice !== undefined) extensions.to_device = toDevice;
    hasNews ||= (toDevice?.events?.length ?? 0) > 0;
  }

  let held: HeldE2eeFields = from?.e2ee ?? {};
  if (request.e2ee) {
    const e2ee = e2eeExtension(
      {
        oneTimeKeyCounts: oneTimeKeyCounts(ctx, caller.userId, caller.deviceId),
        unusedFallbackKeyTypes: state.keys.unusedFallbackKeyTypes(caller.userId, caller.deviceId),
        deviceLists: from ? deviceListDelta(state, caller.userId, from.streams) : undefined,
      },
      from?.e2ee,
      profile,
    );
    // ruma leaves an empty `E2EE` out (`skip_serializing_if = "E2EE::is_empty"`).
    if (!profile.slidingOmitEmptyE2ee || Object.keys(e2ee.wire).length > 0) extensions.e2ee = e2ee.wire;
    held = e2ee.held;
    hasNews ||= e2ee.hasNews;
  }

  const rooms = slidingRooms({
    rooms: state.rooms,
    accountData: state.accountData,
    viewer: caller,
    now: state.clock.now(),
    lists: request.lists,
    roomSubscriptions: request.roomSubscriptions,
    since: from?.streams.rooms,
    sent: from?.rooms ?? new Map(),
    upTo: streams.rooms,
    prevBatch: formatPaginationToken,
  });
  hasNews ||= rooms.hasNews;

  const body: Record<string, unknown> = {};
  // Synapse leaves `lists` out when there are none; `rooms` and `extensions` are always there.
  if (Object.keys(rooms.lists).length > 0) body.lists = rooms.lists;
  body.rooms = rooms.rooms;
  body.extensions = extensions;
  return { body, next: { streams, toDevice: toDevicePosition, e2ee: held, rooms: rooms.sent }, hasNews };
}

function unknownPosition(): MatrixError {
  return new MatrixError(400, "M_UNKNOWN_POS", "Unknown position");
}

export const slidingSyncRoutes: Route<ServerState, Profile>[] = [
  { method: "POST", pattern: SLIDING_SYNC_PATH, handler: slidingSync },
];
