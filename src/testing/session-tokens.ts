import { type Caller, MatrixError } from "./route.js";
import type { ServerState } from "./state/server-state.js";

/**
 * Access tokens across the account and session stores: the router's token check, refreshable
 * login, `POST /refresh` and the expiry control. The rules themselves live in
 * `state/session-token-store.ts`; this file adds the errors Synapse answers with.
 */

/**
 * The caller a token belongs to, or the 401 Synapse sends (`get_user_by_access_token`): an unknown
 * token gets `soft_logout: false`, an expired one `soft_logout: true` (or what
 * `expireAccessToken` asked for). `allowExpired` is Synapse's flag for `/logout` and
 * `/logout/all`, which a soft-logged-out client may still call; a token expired with
 * `softLogout: false` stands for a revoked one, so it is refused even there.
 */
export function authenticateAccessToken(state: ServerState, token: string, allowExpired: boolean): Caller {
  const caller = state.accounts.authenticate(token);
  if (!caller) {
    throw new MatrixError(401, "M_UNKNOWN_TOKEN", "Unrecognised access token", { soft_logout: false });
  }
  const status = state.sessionTokens.status(token, state.clock.now());
  if (status.kind === "expired" && !(allowExpired && status.softLogout)) {
    throw new MatrixError(401, "M_UNKNOWN_TOKEN", "Access token has expired", {
      soft_logout: status.softLogout,
    });
  }
  state.sessionTokens.markUsed(token);
  return caller;
}

/**
 * The `refresh_token` login and registration parameter (spec v1.3+): absent means false; anything
 * but a boolean is refused as Synapse refuses it, before any other check.
 */
export function wantsRefreshToken(body: Record<string, unknown>): boolean {
  const value = body.refresh_token ?? false;
  if (typeof value !== "boolean") {
    throw new MatrixError(400, "M_UNKNOWN", "`refresh_token` should be true or false.");
  }
  return value;
}

/** The extra login/registration response fields for a refreshable session, snake_case. */
export function startRefreshableSession(
  state: ServerState,
  caller: { userId: string; deviceId: string; accessToken: string },
): { refresh_token: string; expires_in_ms?: number } {
  const session = state.sessionTokens.startSession(
    caller.userId,
    caller.deviceId,
    caller.accessToken,
    state.clock.now(),
  );
  return {
    refresh_token: session.refreshToken,
    ...(session.expiresInMs !== undefined ? { expires_in_ms: session.expiresInMs } : {}),
  };
}

/**
 * `POST /refresh` after validation, with Synapse's answers: an unknown refresh token → 401
 * `M_UNKNOWN_TOKEN` (`soft_logout: false`, so clients give up); one already traded and followed
 * up, or past its lifetime → 403 `M_FORBIDDEN`.
 */
export function refreshSession(
  state: ServerState,
  refreshToken: string,
): { access_token: string; refresh_token: string; expires_in_ms?: number } {
  const now = state.clock.now();
  const result = state.sessionTokens.refresh(
    refreshToken,
    now,
    (userId, deviceId) => state.accounts.addDeviceWithToken(userId, { deviceId, now }).accessToken,
  );
  if (!result.ok) {
    switch (result.reason) {
      case "unknown":
        throw new MatrixError(401, "M_UNKNOWN_TOKEN", "refresh token does not exist", { soft_logout: false });
      case "superseded":
        throw new MatrixError(403, "M_FORBIDDEN", "refresh token isn't valid anymore");
      case "expired":
        throw new MatrixError(403, "M_FORBIDDEN", "The supplied refresh token has expired");
    }
  }
  for (const token of result.revoked) state.accounts.revokeAccessToken(token);
  return {
    access_token: result.accessToken,
    refresh_token: result.refreshToken,
    ...(result.expiresInMs !== undefined ? { expires_in_ms: result.expiresInMs } : {}),
  };
}

/**
 * The control call: from now on `accessToken` is refused with 401 `M_UNKNOWN_TOKEN` and the given
 * `soft_logout`. Throws `RangeError` (without the token in the message) for an unknown token.
 */
export function expireAccessToken(state: ServerState, accessToken: string, softLogout: boolean): void {
  const caller = state.accounts.authenticate(accessToken);
  if (!caller) throw new RangeError("unknown access token");
  state.sessionTokens.forceExpiry(caller.userId, caller.deviceId, accessToken, softLogout);
}
