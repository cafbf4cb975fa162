import type { Profile } from "./profiles.js";
import { MatrixError, type RouteContext } from "./route.js";
import type { ServerState } from "./state/server-state.js";
import type { UiaSession } from "./state/uia-store.js";

/**
 * User-interactive auth (Client-Server spec, "User-Interactive Authentication API"), as Synapse's
 * `AuthHandler.check_ui_auth` does it: a call without `auth` starts a session and gets 401
 * `{flows, params, session}`; a call whose `auth` completes a stage of some flow goes through; a
 * failed stage gets 401 with the same fields plus `completed` and the stage's `errcode`. A session
 * is bound to the method and path that started it.
 */

/** Thrown by `requireUia`; the router sends `response` as it is (a UIA 401 need not have an errcode). */
export class UiaRequiredError extends Error {
  override name = "UiaRequiredError";
  constructor(readonly body: Record<string, unknown>) {
    super("user-interactive auth required");
  }
}

export type UiaContext = Pick<RouteContext<ServerState, Profile>, "state" | "profile" | "method" | "path">;

export interface UiaOptions {
  flows: readonly (readonly string[])[];
  /**
   * Whose password `m.login.password` must match; omitted for registration, where there is no
   * user yet (the stage is then not offered).
   */
  userId?: string;
  /** Called with the session before any challenge is thrown, to remember data across calls. */
  onSession?: (session: UiaSession) => void;
}

export interface UiaResult {
  session: UiaSession;
  completed: ReadonlySet<string>;
}

/** Flows for operations that re-verify the caller (device deletion, cross-signing upload). */
export function userVerificationFlows(profile: Profile): string[][] {
  return profile.dummyAuthForUserVerification
    ? [["m.login.password"], ["m.login.dummy"]]
    : [["m.login.password"]];
}

export function requireUia(ctx: UiaContext, auth: unknown, options: UiaOptions): UiaResult {
  const { state } = ctx;
  const authDict = typeof auth === "object" && auth !== null && !Array.isArray(auth) ? auth : undefined;
  const sessionId = authDict && (authDict as { session?: unknown }).session;
  let session: UiaSession;
  if (sessionId === undefined || sessionId === null || sessionId === "") {
    session = state.uia.create(ctx.method, ctx.path);
  } else {
    const found = typeof sessionId === "string" ? state.uia.get(sessionId) : undefined;
    if (!found) throw new MatrixError(400, "M_UNKNOWN", `Unknown session ID: ${String(sessionId)}`);
    if (found.method !== ctx.method || found.path !== ctx.path) {
      throw new MatrixError(
        403,
        "M_FORBIDDEN",
        "Requested operation has changed during the UI authentication session.",
      );
    }
    session = found;
  }
  options.onSession?.(session);

  const challenge = (extra: Record<string, unknown> = {}) =>
    new UiaRequiredError({
      session: session.id,
      flows: options.flows.map((stages) => ({ stages: [...stages] })),
      params: {},
      ...(session.completed.size > 0 || Object.keys(extra).length > 0
        ? { completed: [...session.completed] }
        : {}),
      ...extra,
    });

  if (!authDict) throw challenge();

  const type = (authDict as { type?: unknown }).type;
  if (type !== undefined) {
    const offered = options.flows.some((f) => f.includes(type as string));
    if (typeof type !== "string" || !offered) {
      throw new MatrixError(400, "M_UNRECOGNIZED", `Unrecognised login type ${String(type)}`);
    }
    const failure = checkStage(ctx, type, authDict as Record<string, unknown>, options);
    if (failure) throw challenge(failure);
    session.completed.add(type);
  }

  const done = options.flows.some((flow) => flow.every((stage) => session.completed.has(stage)));
  if (!done) throw challenge();
  return { session, completed: session.completed };
}

function checkStage(
  ctx: UiaContext,
  type: string,
  auth: Record<string, unknown>,
  options: UiaOptions,
): Record<string, unknown> | undefined {
  if (type === "m.login.dummy") return undefined;
  if (type === "m.login.password") {
    const userId = options.userId;
    const password = auth.password;
    const identified = identifiedUser(auth, ctx.state.serverName);
    if (typeof password !== "string") {
      throw new MatrixError(400, "M_INVALID_PARAM", "Bad parameter: password");
    }
    if (identified === undefined || userId === undefined) {
      return { errcode: "M_FORBIDDEN", error: "Invalid username or password" };
    }
    if (!ctx.state.accounts.checkPassword(identified, password)) {
      return { errcode: "M_FORBIDDEN", error: "Invalid username or password" };
    }
    // A correct password for someone else is still not the caller (Synapse: 403 "Invalid auth").
    if (identified !== userId) throw new MatrixError(403, "M_FORBIDDEN", "Invalid auth");
    return undefined;
  }
  return { errcode: "M_UNRECOGNIZED", error: `Unrecognised login type ${type}` };
}

/**
 * The user named by `identifier: {type: "m.id.user", user}` or the deprecated top-level `user`,
 * localpart or full id, lower-cased as Synapse does. Undefined when absent or another kind.
 */
export function identifiedUser(auth: Record<string, unknown>, serverName: string): string | undefined {
  let user: unknown;
  const identifier = auth.identifier;
  if (identifier !== undefined) {
    if (typeof identifier !== "object" || identifier === null) return undefined;
    const id = identifier as Record<string, unknown>;
    if (id.type !== "m.id.user") return undefined;
    user = id.user;
  } else {
    user = auth.user;
  }
  if (typeof user !== "string" || user === "") return undefined;
  return qualifyUserId(user, serverName);
}

export function qualifyUserId(user: string, serverName: string): string {
  const lowered = user.toLowerCase();
  return lowered.startsWith("@") ? lowered : `@${lowered}:${serverName}`;
}
