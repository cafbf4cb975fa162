import { z } from "zod";
import type { Profile } from "../profiles.js";
import { MatrixError } from "../route.js";
import { parseBody } from "../validation.js";

/**
 * The request of simplified sliding sync (MSC4186) as Synapse parses it
 * (`SlidingSyncRestServlet.on_POST`, `SlidingSyncBody` in synapse/types/rest/client): `pos` and
 * `timeout` are query parameters — a `pos` in the body is ignored — and the body is validated
 * before the connection is looked up, so a bad body wins over an unknown `pos`.
 */

/** `[event type, state key]` pairs; `*`, `$ME` and `$LAZY` have their MSC4186 meanings. */
const requiredStateSchema = z.array(z.tuple([z.string(), z.string()]));

/** Both are required by Synapse's `CommonRoomParameters`; `timeline_limit` is at most 1000. */
const roomParameters = {
  required_state: requiredStateSchema,
  timeline_limit: z.number().int().max(1000),
};

const listSchema = z.looseObject({
  ...roomParameters,
  /** Inclusive `[start, end]` windows; without `ranges` the list reports only its `count`. */
  ranges: z
    .array(z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]))
    .nullable()
    .optional(),
  filters: z
    .looseObject({
      is_invite: z.boolean().nullable().optional(),
      is_encrypted: z.boolean().nullable().optional(),
      is_dm: z.boolean().nullable().optional(),
    })
    .nullable()
    .optional(),
});

/**
 * Synapse validates `since` as an int (`ToDeviceExtension.since_token_check`); ruma takes any
 * string, and tuwunel and continuwuity fall back to `pos` for one they cannot use.
 */
const toDeviceSchema = (checkSince: boolean) =>
  z.looseObject({
    enabled: z.boolean().nullable().optional(),
    limit: z.number().int().optional(),
    since: z
      .string()
      .refine((s) => !checkSince || /^[+-]?\d+$/.test(s.trim()), {
        message: "'extensions.to_device.since' is invalid (should look like an int)",
      })
      .nullable()
      .optional(),
  });

const bodySchemaFor = (checkSince: boolean) =>
  z.looseObject({
    conn_id: z.string().nullable().optional(),
    lists: z
      .record(z.string().max(64), listSchema)
      .refine((lists) => Object.keys(lists).length <= 100, { message: "Max lists: 100" })
      .nullable()
      .optional(),
    room_subscriptions: z.record(z.string(), z.looseObject(roomParameters)).nullable().optional(),
    extensions: z
      .looseObject({
        to_device: toDeviceSchema(checkSince).nullable().optional(),
        e2ee: z.looseObject({ enabled: z.boolean().nullable().optional() }).nullable().optional(),
      })
      .nullable()
      .optional(),
  });

const bodySchemas = { checked: bodySchemaFor(true), unchecked: bodySchemaFor(false) };

export type RequiredState = z.infer<typeof requiredStateSchema>;

export interface RoomParameters {
  requiredState: RequiredState;
  timelineLimit: number;
}

export interface SlidingListRequest extends RoomParameters {
  ranges: [number, number][] | undefined;
  filters: { isInvite?: boolean; isEncrypted?: boolean; isDm?: boolean };
}

export interface SlidingSyncRequest {
  /** The connection position from the `pos` query parameter; `undefined` starts a connection. */
  pos: number | undefined;
  timeoutMs: number;
  connId: string;
  lists: Map<string, SlidingListRequest>;
  roomSubscriptions: Map<string, RoomParameters>;
  /** Set when the extension is enabled. */
  toDevice: { since: string | undefined; limit: number } | undefined;
  e2ee: boolean;
}

/** Decimal digits, as the mock hands positions out; anything else is not a position at all. */
const POS_PATTERN = /^\d{1,15}$/;

export function formatPos(position: number): string {
  return String(position);
}

interface RequestParts {
  query: URLSearchParams;
  body: unknown;
  method: string;
  profile: Profile;
}

/** Parses query and body in Synapse's order: `timeout`, `pos`, then the body. */
export function parseSlidingSyncRequest(ctx: RequestParts): SlidingSyncRequest {
  const timeoutMs = timeoutParam(ctx.query);
  const rawPos = ctx.query.get("pos");
  let pos: number | undefined;
  if (rawPos !== null) {
    // Synapse: a token it cannot parse is a plain 400 "Invalid stream token" (`M_UNKNOWN`); only a
    // well-formed position it does not know is `M_UNKNOWN_POS`.
    if (!POS_PATTERN.test(rawPos)) throw new MatrixError(400, "M_UNKNOWN", "Invalid stream token");
    pos = Number(rawPos);
  }
  const sinceIsChecked = ctx.profile.slidingToDeviceSince === "since";
  const body = parseBody(ctx, sinceIsChecked ? bodySchemas.checked : bodySchemas.unchecked);

  const lists = new Map<string, SlidingListRequest>();
  for (const [name, list] of Object.entries(body.lists ?? {})) {
    const filters: SlidingListRequest["filters"] = {};
    if (typeof list.filters?.is_invite === "boolean") filters.isInvite = list.filters.is_invite;
    if (typeof list.filters?.is_encrypted === "boolean") filters.isEncrypted = list.filters.is_encrypted;
    if (typeof list.filters?.is_dm === "boolean") filters.isDm = list.filters.is_dm;
    lists.set(name, {
      requiredState: list.required_state,
      timelineLimit: list.timeline_limit,
      ranges: list.ranges ?? undefined,
      filters,
    });
  }
  const roomSubscriptions = new Map<string, RoomParameters>();
  for (const [roomId, sub] of Object.entries(body.room_subscriptions ?? {})) {
    roomSubscriptions.set(roomId, { requiredState: sub.required_state, timelineLimit: sub.timeline_limit });
  }
  const toDevice = body.extensions?.to_device;
  return {
    pos,
    timeoutMs,
    connId: body.conn_id ?? "",
    lists,
    roomSubscriptions,
    toDevice:
      toDevice?.enabled === true
        ? {
            // Synapse's `int()` allows surrounding whitespace; Rust's `u64::from_str` does not.
            since: (sinceIsChecked ? toDevice.since?.trim() : toDevice.since) ?? undefined,
            limit: toDevice.limit ?? 100,
          }
        : undefined,
    e2ee: body.extensions?.e2ee?.enabled === true,
  };
}

/** Synapse `parse_integer(request, "timeout", default=0)`: an integer, not negative. */
function timeoutParam(query: URLSearchParams): number {
  const raw = query.get("timeout");
  if (raw === null) return 0;
  if (!/^[+-]?\d+$/.test(raw.trim())) {
    throw new MatrixError(400, "M_INVALID_PARAM", "Query parameter timeout must be an integer");
  }
  const value = Number(raw);
  if (value < 0)
    throw new MatrixError(400, "M_INVALID_PARAM", "Query parameter timeout must be a positive integer");
  return value;
}
