import { z } from "zod";
import type { Profile } from "../profiles.js";
import { MatrixError, type Route, type RouteContext } from "../route.js";
import type { DeviceRecord } from "../state/account-store.js";
import { deleteDevice } from "../state/device-lifecycle.js";
import type { ServerState } from "../state/server-state.js";
import { requireUia, userVerificationFlows } from "../uia.js";
import { parseBody } from "../validation.js";

/**
 * Device management (spec, "Device management"): list, read, rename, delete. Deleting needs
 * user-interactive auth and takes the device's keys and to-device inbox with it. Renaming is a
 * device-list change where the profile says so (`deviceRenameIsDeviceListChange`).
 */

type Ctx = RouteContext<ServerState, Profile>;

function deviceJson(ctx: Ctx, userId: string, d: DeviceRecord) {
  return {
    ...(ctx.profile.deviceIncludesUserId ? { user_id: userId } : {}),
    device_id: d.deviceId,
    display_name: d.displayName,
    last_seen_ip: d.lastSeenIp,
    last_seen_ts: d.lastSeenTs,
  };
}

const putDeviceBody = z.object({ display_name: z.string().nullable().optional() });

const uiaOnlyBody = z.object({ auth: z.record(z.string(), z.unknown()).nullable().optional() });

const deleteDevicesBody = z.object({
  devices: z.array(z.string()),
  auth: z.record(z.string(), z.unknown()).optional(),
});

export const devicesRoutes: Route<ServerState, Profile>[] = [
  {
    method: "GET",
    pattern: "/_matrix/client/v3/devices",
    handler: (ctx) => {
      const { userId } = ctx.caller();
      const devices = ctx.state.accounts.devices(userId).map((d) => deviceJson(ctx, userId, d));
      return { status: 200, body: { devices } };
    },
  },
  {
    method: "GET",
    pattern: "/_matrix/client/v3/devices/{deviceId}",
    handler: (ctx) => {
      const { userId } = ctx.caller();
      const device = ctx.state.accounts.device(userId, ctx.params.deviceId!);
      if (!device) throw new MatrixError(404, "M_NOT_FOUND", ctx.profile.unknownDeviceMessage);
      return { status: 200, body: deviceJson(ctx, userId, device) };
    },
  },
  {
    method: "PUT",
    pattern: "/_matrix/client/v3/devices/{deviceId}",
    handler: (ctx) => {
      const { userId } = ctx.caller();
      const body = parseBody(ctx, putDeviceBody);
      const deviceId = ctx.params.deviceId!;
      const max = ctx.profile.deviceDisplayNameMaxLength;
      const name = body.display_name;
      if (max !== null && typeof name === "string" && name.length > max) {
        throw new MatrixError(400, "M_TOO_LARGE", `Device display name is too long (max ${max})`);
      }
      if (!ctx.state.accounts.hasDevice(userId, deviceId)) {
        throw new MatrixError(404, "M_NOT_FOUND", ctx.profile.unknownDeviceMessage);
      }
      // Synapse leaves the name alone for null or absent; ruma servers set what was sent.
      if (typeof name === "string") ctx.state.accounts.setDisplayName(userId, deviceId, name);
      else if (ctx.profile.nullDisplayNameClears) ctx.state.accounts.setDisplayName(userId, deviceId, null);
      // Synapse's `update_device` calls `notify_device_update` after every update, changed or not.
      if (ctx.profile.deviceRenameIsDeviceListChange) ctx.state.keys.noteDeviceListChange(userId);
      return { status: 200, body: {} };
    },
  },
  {
    method: "DELETE",
    pattern: "/_matrix/client/v3/devices/{deviceId}",
    handler: (ctx) => {
      const { userId } = ctx.caller();
      // Synapse accepts a DELETE without a body (it starts UIA), whatever the profile says elsewhere.
      const body = ctx.body === undefined ? {} : parseBody(ctx, uiaOnlyBody);
      requireUia(ctx, body.auth, { flows: userVerificationFlows(ctx.profile), userId });
      deleteDevice(ctx.state, userId, ctx.params.deviceId!);
      return { status: 200, body: {} };
    },
  },
  {
    method: "POST",
    pattern: "/_matrix/client/v3/delete_devices",
    handler: (ctx) => {
      const { userId } = ctx.caller();
      const body = parseBody(ctx, deleteDevicesBody);
      requireUia(ctx, body.auth, { flows: userVerificationFlows(ctx.profile), userId });
      for (const deviceId of body.devices) deleteDevice(ctx.state, userId, deviceId);
      return { status: 200, body: {} };
    },
  },
];
