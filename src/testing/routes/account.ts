import type { Profile } from "../profiles.js";
import { MatrixError, type Route, type RouteContext } from "../route.js";
import { startRefreshableSession, wantsRefreshToken } from "../session-tokens.js";
import { deleteDevice, loginNewDevice } from "../state/device-lifecycle.js";
import type { ServerState } from "../state/server-state.js";
import { identifiedUser, requireUia } from "../uia.js";
import { localpartProblem } from "../user-ids.js";
import { jsonObjectBody } from "../validation.js";

/**
 * Registration, login, whoami and logout, with the checks and error codes of Synapse's
 * `RegisterRestServlet`, `LoginRestServlet` and `LogoutRestServlet` (element-hq/synapse v1.157).
 */

type Ctx = RouteContext<ServerState, Profile>;

const MAX_CREDENTIAL_LENGTH = 512;

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new MatrixError(400, "M_INVALID_PARAM", `Invalid ${key}`);
  return value;
}

/** The device `register` and `login` log in: `device_id` to reuse, and a display name for a new one. */
interface DeviceRequest {
  deviceId: string | undefined;
  displayName: string | undefined;
}

function deviceRequest(body: Record<string, unknown>): DeviceRequest {
  return {
    deviceId: optionalString(body, "device_id"),
    displayName: optionalString(body, "initial_device_display_name"),
  };
}

/**
 * Logs a device in (a new one, or `device_id`'s again) and answers as Synapse's register and login
 * do: the deprecated `home_server` under the profile, and a refresh token when asked for.
 */
function loggedIn(ctx: Ctx, userId: string, request: DeviceRequest, refreshable: boolean) {
  const { state, profile } = ctx;
  const device = loginNewDevice(state, userId, {
    ...(request.deviceId !== undefined ? { deviceId: request.deviceId } : {}),
    displayName: request.displayName ?? null,
  });
  return {
    status: 200,
    body: {
      user_id: userId,
      access_token: device.accessToken,
      device_id: device.deviceId,
      ...(profile.loginReturnsHomeServer ? { home_server: state.serverName } : {}),
      ...(refreshable ? startRefreshableSession(state, { userId, ...device }) : {}),
    },
  };
}

function register(ctx: Ctx) {
  const body = jsonObjectBody(ctx);
  const { state, profile } = ctx;
  const kind = ctx.query.get("kind") ?? "user";
  if (kind === "guest") throw new MatrixError(403, "M_FORBIDDEN", "Guest access is disabled");
  if (kind !== "user")
    throw new MatrixError(400, "M_UNRECOGNIZED", `Do not understand membership kind: ${kind}`);
  const refreshable = wantsRefreshToken(body);
  if (ctx.headers.has("authorization") || ctx.query.has("access_token")) {
    throw new MatrixError(
      400,
      "M_UNKNOWN",
      "An access token should not be provided on requests to /register (except if type is m.login.application_service)",
    );
  }

  let username: string | undefined;
  if (body.username !== undefined) {
    if (typeof body.username !== "string" || body.username.length > MAX_CREDENTIAL_LENGTH) {
      throw new MatrixError(400, "M_UNKNOWN", "Invalid username");
    }
    username = body.username.toLowerCase();
  }
  let password: string | undefined;
  if (body.password !== undefined && body.password !== null) {
    if (typeof body.password !== "string" || body.password.length > MAX_CREDENTIAL_LENGTH) {
      throw new MatrixError(400, "M_UNKNOWN", "Invalid password");
    }
    password = body.password;
  }
  const device = deviceRequest(body);
  if (body.inhibit_login !== undefined && typeof body.inhibit_login !== "boolean") {
    throw new MatrixError(400, "M_INVALID_PARAM", "Invalid inhibit_login");
  }

  // Synapse checks the username before UIA, so a taken name fails on the first call.
  if (username !== undefined) checkUsername(state, username);

  const uia = requireUia(ctx, body.auth, {
    flows: [["m.login.dummy"]],
    // The password may come with the first call only; the session remembers it (Synapse keeps its hash).
    onSession: (session) => {
      if (password !== undefined) session.data.set("password", password);
    },
  });
  const sessionPassword = uia.session.data.get("password") as string | undefined;
  if (sessionPassword === undefined)
    throw new MatrixError(400, "M_MISSING_PARAM", "Missing params: password");

  const localpart = username ?? state.accounts.nextFreeNumericLocalpart(state.serverName);
  if (username !== undefined) checkUsername(state, username);
  const userId = `@${localpart}:${state.serverName}`;
  state.accounts.createAccount(userId, sessionPassword);
  state.uia.delete(uia.session.id);

  if (body.inhibit_login === true) {
    const homeServer = profile.loginReturnsHomeServer ? { home_server: state.serverName } : {};
    return { status: 200, body: { user_id: userId, ...homeServer } };
  }
  return loggedIn(ctx, userId, device, refreshable);
}

function checkUsername(state: ServerState, localpart: string): void {
  const problem = localpartProblem(localpart, state.serverName);
  if (problem) throw new MatrixError(400, "M_INVALID_USERNAME", problem);
  if (state.accounts.userExists(`@${localpart}:${state.serverName}`)) {
    throw new MatrixError(400, "M_USER_IN_USE", "User ID already taken.");
  }
}

function login(ctx: Ctx) {
  const body = jsonObjectBody(ctx);
  const { state, profile } = ctx;
  const refreshable = wantsRefreshToken(body);
  if (body.type === undefined) {
    // Synapse reads `login_submission["type"]` and maps the KeyError to this plain 400.
    throw profile.validationErrors === "synapse"
      ? new MatrixError(400, "M_UNKNOWN", "Missing JSON keys.")
      : new MatrixError(400, "M_BAD_JSON", "missing field `type`");
  }
  if (typeof body.type !== "string") throw new MatrixError(400, "M_INVALID_PARAM", "Bad parameter: type");
  if (body.type !== "m.login.password")
    throw new MatrixError(400, "M_UNKNOWN", `Unknown login type ${body.type}`);
  if (body.password === undefined) {
    throw new MatrixError(
      400,
      "M_MISSING_PARAM",
      "Missing parameters for login type m.login.password: ['password']",
    );
  }
  if (typeof body.password !== "string")
    throw new MatrixError(400, "M_INVALID_PARAM", "Bad parameter: password");
  if (body.identifier !== undefined) {
    const id = body.identifier;
    if (typeof id !== "object" || id === null || Array.isArray(id)) {
      throw new MatrixError(400, "M_INVALID_PARAM", "Invalid identifier in login submission");
    }
    const idType = (id as { type?: unknown }).type;
    if (idType !== "m.id.user") throw new MatrixError(400, "M_UNKNOWN", "Unknown login identifier type");
    if (typeof (id as { user?: unknown }).user !== "string") {
      throw new MatrixError(400, "M_UNKNOWN", "User identifier is missing 'user' key");
    }
  } else if (typeof body.user !== "string") {
    throw new MatrixError(400, "M_UNKNOWN", "User identifier is missing 'user' key");
  }
  const device = deviceRequest(body);

  const userId = identifiedUser(body, state.serverName);
  if (userId === undefined || !state.accounts.checkPassword(userId, body.password)) {
    throw new MatrixError(403, "M_FORBIDDEN", "Invalid username or password");
  }
  return loggedIn(ctx, userId, device, refreshable);
}

export const accountRoutes: Route<ServerState, Profile>[] = [
  { method: "POST", pattern: "/_matrix/client/v3/register", unauthenticated: true, handler: register },
  {
    method: "GET",
    pattern: "/_matrix/client/v3/login",
    unauthenticated: true,
    handler: () => ({ status: 200, body: { flows: [{ type: "m.login.password" }] } }),
  },
  { method: "POST", pattern: "/_matrix/client/v3/login", unauthenticated: true, handler: login },
  {
    method: "GET",
    pattern: "/_matrix/client/v3/account/whoami",
    handler: (ctx) => {
      const { userId, deviceId } = ctx.caller();
      return { status: 200, body: { user_id: userId, is_guest: false, device_id: deviceId } };
    },
  },
  {
    method: "POST",
    pattern: "/_matrix/client/v3/logout",
    allowExpiredToken: true,
    handler: (ctx) => {
      const { userId, deviceId } = ctx.caller();
      // Logging out deletes the device, its keys and its to-device inbox (spec, POST /logout).
      deleteDevice(ctx.state, userId, deviceId);
      return { status: 200, body: {} };
    },
  },
  {
    method: "POST",
    pattern: "/_matrix/client/v3/logout/all",
    allowExpiredToken: true,
    handler: (ctx) => {
      const { userId } = ctx.caller();
      for (const deviceId of ctx.state.accounts.deviceIds(userId)) deleteDevice(ctx.state, userId, deviceId);
      return { status: 200, body: {} };
    },
  },
];
