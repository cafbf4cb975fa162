import { z } from "zod";
import type { Profile } from "../profiles.js";
import { MatrixError, type MockResponse, type Route, type RouteContext } from "../route.js";
import {
  type DehydratedDeviceUpload,
  deleteDehydratedDevice,
  registerDehydratedDeviceRow,
  storeDehydratedDevice,
} from "../state/dehydrated-device-lifecycle.js";
import type { JsonObject } from "../state/key-store.js";
import type { ServerState } from "../state/server-state.js";
import { jsonObjectBody, parseBody } from "../validation.js";
import { dehydratedDeviceEventsRoutes } from "./dehydrated-device-events.js";
import { DEHYDRATED_DEVICE_PATH, requireDehydration, wrongMethod } from "./dehydration-gate.js";

/**
 * MSC3814 `GET / PUT / DELETE /dehydrated_device`, as Synapse's `DehydratedDeviceV2Servlet`, tuwunel's
 * `dehydrated_device.rs` and the MSC text behave (which one: `Profile.dehydratedPutRules`). The
 * events endpoint is in `dehydrated-device-events.ts`. Unlike Synapse, which parses the PUT body
 * before it authenticates, the mock authenticates every request first.
 */

type Ctx = RouteContext<ServerState, Profile>;

const NO_DEVICE = "No dehydrated device available";

/** Synapse's `PutBody` (pydantic, extra fields kept): the display-name key is required, null allowed. */
const synapseBody = z.looseObject({
  device_data: z.looseObject({ algorithm: z.string() }),
  device_id: z.string(),
  initial_device_display_name: z.string().nullable(),
});

const keyMap = z.record(z.string(), z.unknown());

/** The MSC's fields: display name optional, `device_keys` required, keys as in `keys/upload`. */
const mscBody = z.looseObject({
  device_data: z.looseObject({ algorithm: z.string() }),
  device_id: z.string(),
  initial_device_display_name: z.string().nullable().optional(),
  device_keys: keyMap,
  one_time_keys: keyMap.nullable().optional(),
  fallback_keys: keyMap.nullable().optional(),
});

/** ruma's request: `device_data` is a `Raw` (any JSON), key ids must parse as `<algorithm>:<id>`. */
const rumaKeyMap = z.record(z.string().regex(/^[^:]+:.+$/), z.unknown());
const rumaBody = z.looseObject({
  device_data: z.custom<unknown>((v) => v !== undefined, { message: "missing field `device_data`" }),
  device_id: z.string(),
  initial_device_display_name: z.string().nullable().optional(),
  device_keys: keyMap,
  one_time_keys: rumaKeyMap.optional(),
  fallback_keys: rumaKeyMap.optional(),
});

function getDevice(ctx: Ctx): MockResponse {
  requireDehydration(ctx);
  const { userId } = ctx.caller();
  const record = ctx.state.dehydratedDevices.get(userId);
  if (!record) throw new MatrixError(404, "M_NOT_FOUND", NO_DEVICE);
  return { status: 200, body: { device_id: record.deviceId, device_data: record.deviceData } };
}

function deleteDevice(ctx: Ctx): MockResponse {
  requireDehydration(ctx);
  const { userId } = ctx.caller();
  // MSC3814 asks for no user-interactive auth here, unlike `DELETE /devices/{id}`; nor does Synapse.
  const deviceId = deleteDehydratedDevice(ctx.state, userId);
  if (deviceId === undefined) throw new MatrixError(404, "M_NOT_FOUND", NO_DEVICE);
  return { status: 200, body: { device_id: deviceId } };
}

function putDevice(ctx: Ctx): MockResponse {
  requireDehydration(ctx);
  const { userId } = ctx.caller();
  const rules = ctx.profile.dehydratedPutRules;
  if (rules === "synapse") return putSynapse(ctx, userId);
  const body = parseBody(ctx, rules === "ruma" ? rumaBody : mscBody);
  const displayName = body.initial_device_display_name ?? null;
  checkDisplayName(ctx, displayName);
  const { state } = ctx;
  const previous = state.dehydratedDevices.get(userId);
  // tuwunel refuses to turn an ordinary device into the dehydrated one (`set_dehydrated_device`).
  if (rules === "ruma" && !previous && state.accounts.hasDevice(userId, body.device_id)) {
    throw new MatrixError(500, "M_UNKNOWN", "A hydrated device already exists with that ID.");
  }
  deleteDehydratedDevice(state, userId);
  storeDehydratedDevice(state, userId, {
    deviceId: body.device_id,
    deviceData: body.device_data,
    displayName,
    deviceKeys: body.device_keys,
    oneTimeKeys: body.one_time_keys ?? undefined,
    fallbackKeys: body.fallback_keys ?? undefined,
  });
  return { status: 200, body: { device_id: body.device_id } };
}

/**
 * Synapse's order, which loses data on a bad request: validate the model, delete the previous
 * dehydrated device (row, keys, inbox, device-list change), *then* require `device_keys`
 * (400 `M_UNKNOWN`) and check the display name's length (`M_TOO_LARGE`).
 */
function putSynapse(ctx: Ctx, userId: string): MockResponse {
  const raw = jsonObjectBody(ctx);
  const body = parseBody(ctx, synapseBody);
  const { state } = ctx;
  deleteDehydratedDevice(state, userId);
  if (!Object.hasOwn(raw, "device_keys")) {
    throw new MatrixError(400, "M_UNKNOWN", "Device key(s) not found, these must be provided.");
  }
  checkDisplayName(ctx, body.initial_device_display_name);
  const displayName = body.initial_device_display_name;
  // `check_device_registered` creates the row in its own transaction, before the keys are looked at.
  registerDehydratedDeviceRow(state, userId, body.device_id, displayName);
  const keys = synapseKeys(raw);
  storeDehydratedDevice(state, userId, {
    deviceId: body.device_id,
    deviceData: body.device_data,
    displayName,
    ...keys,
  });
  return { status: 200, body: { device_id: body.device_id } };
}

/**
 * The key fields as `_store_dehydrated_device_txn` reads them: falsy values are skipped. Anything
 * else that is not an object with `<algorithm>:<id>` ids makes Synapse's transaction raise (a
 * 500); the mock answers 400 `M_BAD_JSON` instead, at the same point (after the old device went).
 */
function synapseKeys(
  raw: Record<string, unknown>,
): Pick<DehydratedDeviceUpload, "deviceKeys" | "oneTimeKeys" | "fallbackKeys"> {
  const field = (name: string, needsKeyIds: boolean): JsonObject | undefined => {
    const value = raw[name];
    if (value === undefined || value === null || value === false || value === 0 || value === "")
      return undefined;
    if (typeof value !== "object" || Array.isArray(value)) {
      if (Array.isArray(value) && value.length === 0) return undefined;
      throw new MatrixError(400, "M_BAD_JSON", `${name} must be an object`);
    }
    const object = value as JsonObject;
    if (needsKeyIds && Object.keys(object).some((id) => id.split(":").length !== 2)) {
      throw new MatrixError(400, "M_BAD_JSON", `Invalid ${name} key id: expected "<algorithm>:<id>"`);
    }
    return object;
  };
  return {
    deviceKeys: field("device_keys", false),
    oneTimeKeys: field("one_time_keys", true),
    fallbackKeys: field("fallback_keys", true),
  };
}

function checkDisplayName(ctx: Ctx, name: string | null): void {
  const max = ctx.profile.deviceDisplayNameMaxLength;
  if (max !== null && name !== null && name.length > max) {
    throw new MatrixError(400, "M_TOO_LARGE", `Device display name is too long (max ${max})`);
  }
}

/** Every method is routed so that, with the feature off, none of them can answer 405. */
export const dehydratedDeviceRoutes: Route<ServerState, Profile>[] = [
  { method: "GET", pattern: DEHYDRATED_DEVICE_PATH, handler: getDevice },
  { method: "PUT", pattern: DEHYDRATED_DEVICE_PATH, handler: putDevice },
  { method: "DELETE", pattern: DEHYDRATED_DEVICE_PATH, handler: deleteDevice },
  {
    method: "POST",
    pattern: DEHYDRATED_DEVICE_PATH,
    handler: (ctx) => {
      requireDehydration(ctx);
      return wrongMethod(ctx);
    },
  },
  ...dehydratedDeviceEventsRoutes,
];
