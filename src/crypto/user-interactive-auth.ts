import { isMatrixApiError } from "../errors/matrix-api-error.js";
import { UserInteractiveAuthError } from "../errors/user-interactive-auth-error.js";
import { uiaResponseSchema } from "../http/schemas/error.js";

/**
 * What a server sends with 401 when an endpoint needs user-interactive auth (Client-Server API,
 * "User-Interactive Authentication API"): the flows that would complete it, per-stage params, the
 * session to quote back, the stages already done, and — after a failed attempt — errcode/error.
 */
export interface UiaChallenge {
  flows: { stages: string[] }[];
  params: Record<string, unknown>;
  session: string | undefined;
  completed: string[];
  errcode: string | undefined;
  error: string | undefined;
}

/** The `auth` dict the app's callback returns, e.g. `{type: "m.login.password", identifier, password}`. */
export type AuthDict = { type?: string | undefined; session?: string | undefined } & Record<string, unknown>;

/**
 * Asked once per round. Returns the `auth` dict for the next attempt, or `undefined` to give up
 * (the call then fails with `UserInteractiveAuthError` reason `"cancelled"`).
 */
export type UiaCallback = (challenge: UiaChallenge) => Promise<AuthDict | undefined>;

/**
 * Reads a UIA challenge from a transport error: a `MatrixApiError` with status 401 whose JSON body
 * (`data`) has `flows`. Anything else — including a 401 `M_UNKNOWN_TOKEN` — is not a challenge.
 */
export function uiaChallengeFrom(error: unknown): UiaChallenge | undefined {
  if (!isMatrixApiError(error) || error.status !== 401) return undefined;
  const parsed = uiaResponseSchema.safeParse(error.data);
  if (!parsed.success) return undefined;
  const c = parsed.data;
  return {
    flows: c.flows.map((f) => ({ stages: f.stages })),
    params: c.params ?? {},
    session: c.session,
    completed: c.completed ?? [],
    errcode: c.errcode,
    error: c.error,
  };
}

/** Limits of `withUserInteractiveAuth`. */
export interface UiaOptions {
  /** Rounds (server challenges answered) before giving up. Default 10. */
  maxRounds?: number;
}

/**
 * Runs `send` and, while the server answers with a UIA challenge, asks `callback` for the next
 * `auth` dict and sends again. The server's `session` is added to the dict when the callback leaves
 * it out, since every stage of one flow must quote it.
 */
export async function withUserInteractiveAuth<T>(
  send: (auth: AuthDict | undefined) => Promise<T>,
  callback: UiaCallback | undefined,
  options: UiaOptions = {},
): Promise<T> {
  const maxRounds = options.maxRounds ?? 10;
  let auth: AuthDict | undefined;
  for (let round = 0; ; round++) {
    let challenge: UiaChallenge | undefined;
    try {
      return await send(auth);
    } catch (error) {
      challenge = uiaChallengeFrom(error);
      if (!challenge) throw error;
    }
    const details = { flows: challenge.flows, completed: challenge.completed, errcode: challenge.errcode };
    if (!callback) {
      throw new UserInteractiveAuthError("no_callback", "the server requires user-interactive auth", {
        details,
      });
    }
    if (round >= maxRounds) {
      throw new UserInteractiveAuthError(
        "too_many_rounds",
        `user-interactive auth did not complete in ${maxRounds} rounds`,
        { details },
      );
    }
    let next: AuthDict | undefined;
    try {
      next = await callback(challenge);
    } catch (cause) {
      throw new UserInteractiveAuthError("callback_failed", "the user-interactive auth callback threw", {
        cause,
        details,
      });
    }
    if (next === undefined || next === null) {
      throw new UserInteractiveAuthError("cancelled", "user-interactive auth was cancelled", { details });
    }
    if (challenge.errcode !== undefined && auth !== undefined && sameAuth(next, auth, challenge.session)) {
      throw new UserInteractiveAuthError(
        "rejected",
        `the server refused the credentials (${challenge.errcode}) and the callback gave the same again`,
        { details },
      );
    }
    auth =
      next.session === undefined && challenge.session !== undefined
        ? { ...next, session: challenge.session }
        : next;
  }
}

/** Whether two auth dicts say the same, the server's session filled in as it would be on sending. */
function sameAuth(next: AuthDict, previous: AuthDict, session: string | undefined): boolean {
  const filled = next.session === undefined && session !== undefined ? { ...next, session } : next;
  return canonical(filled) === canonical(previous);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "undefined";
}
