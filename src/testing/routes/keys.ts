import { z } from "zod";
import type { Profile } from "../profiles.js";
import { MatrixError, type MockResponse, type Route, type RouteContext } from "../route.js";
import type { JsonObject } from "../state/key-store.js";
import type { ServerState } from "../state/server-state.js";
import { deviceListDelta } from "../sync/device-list-delta.js";
import { currentSyncPosition, isReachable, parseSyncToken } from "../sync/sync-token.js";
import { jsonObjectBody, parseBody } from "../validation.js";
import { clientRoute } from "./client-route.js";
import { crossSigningRoutes } from "./cross-signing.js";
import { optionalIntegerParam, requireUserId, serverNameOf, unreachableServerFailure } from "./matrix-ids.js";

/**
 * `keys/upload`, `keys/query`, `keys/claim` and `keys/changes` (Client-Server spec, "End-to-end
 * encryption" → "Key management API"), with Synapse's validation and answers; the cross-signing
 * endpoints live in `cross-signing.ts` and are part of `keysRoutes`.
 */

type Ctx = RouteContext<ServerState, Profile>;

const signaturesSchema = z.record(z.string(), z.record(z.string(), z.string()));

/** Synapse's `KeyUploadRequestBody` (synapse/rest/client/keys.py). Unknown fields are kept. */
const keyObjectSchema = z.looseObject({
  key: z.string(),
  fallback: z.boolean().nullable().optional(),
  signatures: signaturesSchema,
});
const oneTimeKeysSchema = z.record(z.string(), z.union([z.string(), keyObjectSchema]));
const uploadSchema = z.looseObject({
  device_keys: z
    .looseObject({
      algorithms: z.array(z.string()),
      device_id: z.string(),
      keys: z.record(z.string(), z.string()),
      signatures: signaturesSchema,
      user_id: z.string(),
    })
    .optional(),
  one_time_keys: oneTimeKeysSchema.nullable().optional(),
  fallback_keys: oneTimeKeysSchema.nullable().optional(),
});

const claimSchema = z.looseObject({
  one_time_keys: z.record(z.string(), z.record(z.string(), z.string())).optional(),
});

function upload(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  const body = parseBody(ctx, uploadSchema);
  // Synapse checks key ids in the model validators, before anything is stored.
  requireKeyIds(body.one_time_keys, "one_time_keys");
  requireKeyIds(body.fallback_keys, "fallback_keys");
  const { keys } = ctx.state;

  if (body.device_keys) {
    if (body.device_keys.user_id !== caller.userId) {
      throw new MatrixError(
        400,
        ctx.profile.deviceKeysMismatchErrcode,
        "Provided `user_id` in `device_keys` does not match that of the authenticated user",
      );
    }
    if (body.device_keys.device_id !== caller.deviceId) {
      throw new MatrixError(
        400,
        ctx.profile.deviceKeysMismatchErrcode,
        "Provided `device_id` in `device_keys` does not match that of the authenticated user device",
      );
    }
  }

  // One-time keys go first so a refused batch leaves every kind of key untouched.
  if (body.one_time_keys && Object.keys(body.one_time_keys).length > 0) {
    const result = keys.addOneTimeKeys(
      caller.userId,
      caller.deviceId,
      body.one_time_keys,
      ctx.profile.oneTimeKeyConflict,
    );
    if (!result.ok) {
      // Synapse's message quotes both keys; the mock names only the id (no key material in errors).
      throw new MatrixError(400, "M_UNKNOWN", `One time key ${result.conflictingKeyId} already exists.`);
    }
  }
  if (body.device_keys) keys.setDeviceKeys(caller.userId, caller.deviceId, body.device_keys);
  if (body.fallback_keys && Object.keys(body.fallback_keys).length > 0) {
    keys.setFallbackKeys(caller.userId, caller.deviceId, body.fallback_keys);
  }
  return {
    status: 200,
    body: { one_time_key_counts: oneTimeKeyCounts(ctx, caller.userId, caller.deviceId) },
  };
}

/** Counts as `keys/upload` (and later `/sync`) report them under the profile. */
export function oneTimeKeyCounts(
  ctx: Pick<Ctx, "state" | "profile">,
  userId: string,
  deviceId: string,
): Record<string, number> {
  const counts = ctx.state.keys.oneTimeKeyCounts(userId, deviceId);
  return ctx.profile.seedSignedCurve25519Count ? { signed_curve25519: 0, ...counts } : counts;
}

function requireKeyIds(keys: Record<string, unknown> | null | undefined, field: string): void {
  for (const id of Object.keys(keys ?? {})) {
    if (id.split(":").length !== 2) {
      throw new MatrixError(
        400,
        "M_BAD_JSON",
        `Invalid ${field} key ${JSON.stringify(id)}. Expected "<algorithm>:<device_id>".`,
      );
    }
  }
}

function query(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  optionalIntegerParam(ctx.query, "timeout");
  const body = jsonObjectBody(ctx);
  // Synapse's own checks in `KeyQueryServlet`: both are M_BAD_JSON, a missing field included.
  const wanted = body.device_keys;
  if (typeof wanted !== "object" || wanted === null || Array.isArray(wanted)) {
    throw new MatrixError(400, "M_BAD_JSON", "'device_keys' must be a JSON object");
  }
  const wantedByUser = wanted as Record<string, unknown>;
  for (const devices of Object.values(wantedByUser)) {
    if (!Array.isArray(devices) || devices.some((d) => typeof d !== "string")) {
      throw new MatrixError(400, "M_BAD_JSON", "'device_keys' values must be a list of strings");
    }
  }

  const { state } = ctx;
  const deviceKeys: Record<string, Record<string, JsonObject>> = {};
  const failures: Record<string, unknown> = {};
  const masterKeys: Record<string, JsonObject> = {};
  const selfSigningKeys: Record<string, JsonObject> = {};
  const userSigningKeys: Record<string, JsonObject> = {};

  const remote = state.remoteDeviceLists;
  const callerServer = serverNameOf(caller.userId);
  for (const [userId, devices] of Object.entries(wantedByUser) as [string, string[]][]) {
    const server = serverNameOf(userId);
    if (server === undefined) continue;
    if (!remote.hosts(server)) {
      failures[server] = { ...unreachableServerFailure };
      continue;
    }
    if (server !== state.serverName && callerServer === state.serverName) {
      // A remote user, as this server knows their list (state/remote-device-lists.ts).
      const answer = remote.query(userId, devices, caller.userId);
      if (answer.failed) failures[server] = { ...unreachableServerFailure };
      if (answer.deviceKeys) deviceKeys[userId] = answer.deviceKeys;
      if (answer.master) masterKeys[userId] = answer.master;
      if (answer.selfSigning) selfSigningKeys[userId] = answer.selfSigning;
      continue;
    }
    // A user of this server, or any user asked by a remote server's user: the remote servers are
    // played without caches, so they read true lists. Device names do not cross servers (Synapse's
    // `allow_device_name_lookup_over_federation` is off by default).
    deviceKeys[userId] = localDeviceKeys(state, userId, devices, server === callerServer);
    const master = state.keys.crossSigningKey(userId, "master", caller.userId);
    if (master) masterKeys[userId] = master;
    const selfSigning = state.keys.crossSigningKey(userId, "self_signing", caller.userId);
    if (selfSigning) selfSigningKeys[userId] = selfSigning;
    // Users see other users' master and self-signing keys, but only their own user-signing key.
    if (userId === caller.userId) {
      const userSigning = state.keys.crossSigningKey(userId, "user_signing", caller.userId);
      if (userSigning) userSigningKeys[userId] = userSigning;
    }
  }
  return {
    status: 200,
    body: {
      device_keys: deviceKeys,
      failures,
      master_keys: masterKeys,
      self_signing_keys: selfSigningKeys,
      user_signing_keys: userSigningKeys,
    },
  };
}

/**
 * A user's true device keys: all devices for `[]`, else those asked for that exist. As Synapse,
 * `unsigned` is rebuilt by the server (only the device's display name goes there, `withNames`).
 */
function localDeviceKeys(
  state: ServerState,
  userId: string,
  wanted: string[],
  withNames: boolean,
): Record<string, JsonObject> {
  const ids = wanted.length > 0 ? wanted : state.keys.deviceIdsWithKeys(userId);
  const result: Record<string, JsonObject> = {};
  for (const deviceId of ids) {
    const device = state.accounts.device(userId, deviceId);
    const keys = device ? state.keys.deviceKeys(userId, deviceId) : undefined;
    if (!device || !keys) continue;
    keys.unsigned =
      withNames && device.displayName !== null ? { device_display_name: device.displayName } : {};
    result[deviceId] = keys;
  }
  return result;
}

function claim(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  optionalIntegerParam(ctx.query, "timeout");
  const body = parseBody(ctx, claimSchema);
  const { state } = ctx;
  const oneTimeKeys: Record<string, Record<string, Record<string, unknown>>> = {};
  const failures: Record<string, unknown> = {};
  const wanted = Object.entries(body.one_time_keys ?? {});
  // Synapse parses every user id before claiming anything, so a bad id burns no key.
  for (const [userId] of wanted) requireUserId(userId);
  for (const [userId, devices] of wanted) {
    const server = requireUserId(userId);
    // Claims of remote users' keys go to their server at once (no cache), if it can be reached.
    if (!state.remoteDeviceLists.canReach(caller.userId, userId)) {
      failures[server] = { ...unreachableServerFailure };
      continue;
    }
    for (const [deviceId, algorithm] of Object.entries(devices)) {
      const claimed = state.keys.claimKey(userId, deviceId, algorithm);
      if (!claimed) continue;
      oneTimeKeys[userId] ??= {};
      oneTimeKeys[userId][deviceId] = { [claimed.keyId]: claimed.key };
    }
  }
  return { status: 200, body: { one_time_keys: oneTimeKeys, failures } };
}

/**
 * `GET keys/changes?from=&to=` (spec, "Tracking the device list for a user"): who the caller must
 * re-query, and who they may stop tracking, since `from` — the same `changed`/`left` a `/sync`
 * from that token reports (`sync/device-list-delta.ts`). `from` is a `/sync` `next_batch`; like
 * Synapse (`KeyChangesServlet`), `to` is read but ignored, so changes after it are reported too. A
 * `from` that is not a sync token (the bare device-list position of older mock versions included)
 * is 400 `M_UNKNOWN` "Invalid stream token", as Synapse's `StreamToken.from_string` answers; one
 * ahead of the server — a token of another mock instance — gets the same answer, as `/sync` does.
 */
function changes(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  const from = ctx.query.get("from");
  if (from === null) throw new MatrixError(400, "M_MISSING_PARAM", "Missing string query parameter 'from'");
  const position = parseSyncToken(from);
  if (!position || !isReachable(position, currentSyncPosition(ctx.state))) {
    throw new MatrixError(400, "M_UNKNOWN", "Invalid stream token");
  }
  return { status: 200, body: deviceListDelta(ctx.state, caller.userId, position) };
}

export const keysRoutes: Route<ServerState, Profile>[] = [
  clientRoute("POST", "keys/upload", upload),
  clientRoute("POST", "keys/query", query),
  clientRoute("POST", "keys/claim", claim),
  clientRoute("GET", "keys/changes", changes),
  ...crossSigningRoutes,
];
