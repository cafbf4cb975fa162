import { z } from "zod";
import type { Profile } from "../profiles.js";
import { MatrixError, type MockResponse, type Route, type RouteContext } from "../route.js";
import type { DehydratedEventsFault } from "../state/dehydrated-device-store.js";
import type { ServerState } from "../state/server-state.js";
import type { ToDeviceEvent } from "../state/to-device-store.js";
import { parseBody } from "../validation.js";
import { DEHYDRATED_DEVICE_PATH, requireDehydration, wrongMethod } from "./dehydration-gate.js";

/**
 * MSC3814 `…/dehydrated_device/{device_id}/events`: the to-device messages queued for the user's
 * dehydrated device, a page at a time. Two wire variants (`Profile.dehydratedEventsGet` / `…Post`):
 * `GET ?from=&limit=` (current MSC, Synapse ≥ 1.157) and `POST {next_batch}` (earlier draft,
 * Synapse ≤ 1.157, tuwunel). Reading never deletes: messages go only with the device, so a drain
 * can resume from any token or start again (MSC3814, "Rehydrating a device").
 *
 * Order of checks as Synapse: body (POST), `limit`, then 403 for no dehydrated device or another
 * device id, then the token. A page reads only its own messages (`ToDeviceStore.page`, counted by
 * `workDone`); the end rules per profile are documented on `DehydrationFlags`.
 */

type Ctx = RouteContext<ServerState, Profile>;

/** Synapse's `PostBody`: `next_batch: StrictStr | None = None`; ruma's `Option<String>`. */
const postBody = z.looseObject({ next_batch: z.string().nullable().optional() });

const FILLER_EVENT_TYPE = "org.matrix.mock.filler";

function events(ctx: Ctx, variant: "GET" | "POST"): MockResponse {
  requireDehydration(ctx);
  const { profile, state } = ctx;
  if (!(variant === "GET" ? profile.dehydratedEventsGet : profile.dehydratedEventsPost))
    return wrongMethod(ctx);
  const { userId } = ctx.caller();
  const token = variant === "POST" ? parseBody(ctx, postBody).next_batch : ctx.query.get("from");
  const limit = pageLimit(ctx);

  const record = state.dehydratedDevices.get(userId);
  if (!record) throw new MatrixError(403, "M_FORBIDDEN", "No dehydrated device exists");
  if (record.deviceId !== ctx.params.deviceId) {
    throw new MatrixError(403, "M_FORBIDDEN", "You may only fetch messages for your dehydrated device");
  }
  const after = parseToken(profile, token);
  const deviceId = record.deviceId;

  const fault = state.dehydratedDevices.takeEventsFault(userId);
  if (fault) return faultPage(ctx, fault, { userId, deviceId, after, limit, token });

  const page = state.toDevice.page(userId, deviceId, after, limit);
  const events = page.events.map((e) => e.event);
  const lastId = page.events.at(-1)?.streamId;
  const nextBatch = nextBatchFor(profile, variant, {
    events: events.length,
    limit,
    lastId,
    hasMore: page.hasMore,
    serverPosition: state.toDevice.position,
  });
  return { status: 200, body: nextBatch === undefined ? { events } : { events, next_batch: nextBatch } };
}

/** `?limit=` as Synapse's `parse_integer(request, "limit", 100)`; ignored where the server has none. */
function pageLimit(ctx: Ctx): number {
  const { profile } = ctx;
  const raw = profile.dehydratedEventsLimitParam ? ctx.query.get("limit") : null;
  if (raw === null) return profile.dehydratedEventsPageSize;
  if (!/^[+-]?\d+$/.test(raw.trim())) {
    throw new MatrixError(400, "M_INVALID_PARAM", "Query parameter limit must be an integer");
  }
  const limit = Number(raw.trim());
  if (limit < 0)
    throw new MatrixError(400, "M_INVALID_PARAM", "Query parameter limit must be a positive integer.");
  return limit;
}

/** The stream position a token stands for (0 = from the start). */
function parseToken(profile: Profile, token: string | null | undefined): number {
  if (profile.dehydratedEventsToken === "decimal") {
    // tuwunel: `None` starts at the beginning; anything `u64::from_str` rejects is a 500.
    if (token === null || token === undefined) return 0;
    if (!/^\+?\d{1,19}$/.test(token))
      throw new MatrixError(500, "M_UNKNOWN", "invalid digit found in string");
    return Number(token);
  }
  // Synapse: a missing or empty token starts at the beginning; otherwise `d` + a Python int.
  if (!token) return 0;
  const match = /^d\s*([+-]?\d+)\s*$/.exec(token);
  if (!match) {
    throw new MatrixError(
      400,
      "M_INVALID_PARAM",
      `from parameter ${JSON.stringify(token)} has an invalid format`,
    );
  }
  return Number(match[1]);
}

export function formatToken(profile: Profile, position: number): string {
  return profile.dehydratedEventsToken === "decimal" ? String(position) : `d${position}`;
}

export interface PageFacts {
  /** Events in the page. */
  events: number;
  limit: number;
  /** Stream id of the page's last event. */
  lastId: number | undefined;
  /** Whether more messages for the device follow the page. */
  hasMore: boolean;
  /** The newest to-device stream id on the whole server (Synapse's `to_token`). */
  serverPosition: number;
}

/** The `next_batch` a page carries under the profile's end rules, or `undefined` for none. */
export function nextBatchFor(profile: Profile, variant: "GET" | "POST", page: PageFacts): string | undefined {
  // Synapse (`get_messages_for_device`): a full page stops at its last row; a short one covers
  // everything up to `to_token`. With limit=0 the "full" page has no row and ends at `to_token`.
  const synapseStreamId =
    page.events === page.limit ? (page.lastId ?? page.serverPosition) : page.serverPosition;
  if (variant === "POST") {
    if (profile.dehydratedPostNextBatch === "always") return formatToken(profile, synapseStreamId);
    return page.lastId === undefined ? undefined : formatToken(profile, page.lastId);
  }
  switch (profile.dehydratedGetNextBatch) {
    case "synapse":
      return synapseStreamId === page.serverPosition ? undefined : formatToken(profile, synapseStreamId);
    case "if-full":
      return page.lastId !== undefined && page.events === page.limit
        ? formatToken(profile, page.lastId)
        : undefined;
    case "if-more":
      return page.hasMore && page.lastId !== undefined ? formatToken(profile, page.lastId) : undefined;
  }
}

/** A page from a misbehaving server (`MockControl.setDehydratedEventsFault`). */
function faultPage(
  ctx: Ctx,
  fault: DehydratedEventsFault,
  request: {
    userId: string;
    deviceId: string;
    after: number;
    limit: number;
    token: string | null | undefined;
  },
): MockResponse {
  const { profile, state } = ctx;
  if (fault.kind === "repeat-cursor") {
    const page = state.toDevice.page(request.userId, request.deviceId, request.after, request.limit);
    const same = request.token ? request.token : formatToken(profile, request.after);
    return { status: 200, body: { events: page.events.map((e) => e.event), next_batch: same } };
  }
  const events: ToDeviceEvent[] = [];
  for (let i = 1; i <= fault.eventsPerPage; i++) {
    events.push({
      type: FILLER_EVENT_TYPE,
      sender: `@mock-filler:${state.serverName}`,
      content: { n: request.after + i },
    });
  }
  const next = formatToken(profile, request.after + Math.max(1, fault.eventsPerPage));
  return { status: 200, body: { events, next_batch: next } };
}

const EVENTS_PATH = `${DEHYDRATED_DEVICE_PATH}/{deviceId}/events`;

/** Every method is routed so that, with the feature off, none of them can answer 405. */
export const dehydratedDeviceEventsRoutes: Route<ServerState, Profile>[] = [
  { method: "GET", pattern: EVENTS_PATH, handler: (ctx) => events(ctx, "GET") },
  { method: "POST", pattern: EVENTS_PATH, handler: (ctx) => events(ctx, "POST") },
  ...(["PUT", "DELETE"] as const).map(
    (method): Route<ServerState, Profile> => ({
      method,
      pattern: EVENTS_PATH,
      handler: (ctx) => {
        requireDehydration(ctx);
        return wrongMethod(ctx);
      },
    }),
  ),
];
