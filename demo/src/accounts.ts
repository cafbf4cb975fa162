import { createE2eeClient, type E2eeClient } from "matrix-e2ee-devices";
import type { MockHomeserver } from "matrix-e2ee-devices/testing";
import { z } from "zod";
import type { LogPanel } from "./log-panel.js";
import { MatrixCallError, MatrixCalls } from "./matrix-calls.js";
import { appRetryLogger, type RetryCounter } from "./observe.js";

/** What a login hands an app. Nothing here is ever written to the log but `userId`/`deviceId`. */
export interface Session {
  userId: string;
  deviceId: string;
  accessToken: string;
}

/** A user of the demo; the password is random and stays in memory, as a password manager's would. */
export interface Account {
  userId: string;
  /**
   * What the user signs in with (`m.id.user`): the localpart on this server, the whole user id for
   * a user of another server (Dave, card 5), whose server this page plays at the same URL.
   */
  localpart: string;
  password: string;
}

const sessionSchema = z.looseObject({ user_id: z.string(), device_id: z.string(), access_token: z.string() });

/** Where the demo's own calls go, with or without a session. */
export interface Homeserver {
  hs: MockHomeserver;
  log: LogPanel;
  retries: RetryCounter;
}

/** The app's own calls for `actor`, as `session` (or unauthenticated, for register and login). */
export function matrixCalls(server: Homeserver, actor: string, session?: Session): MatrixCalls {
  return new MatrixCalls({
    baseUrl: server.hs.baseUrl,
    fetch: server.hs.fetch,
    ...(session ? { accessToken: session.accessToken } : {}),
    onRetry: appRetryLogger(server.log, actor, server.retries),
  });
}

export function randomPassword(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...bytes));
}

/** `POST /register` through the server's user-interactive auth (`m.login.dummy`). */
export async function register(
  server: Homeserver,
  localpart: string,
  displayName: string,
): Promise<{ account: Account; session: Session }> {
  const calls = matrixCalls(server, displayName);
  const password = randomPassword();
  const body = { username: localpart, password, initial_device_display_name: `${displayName}'s laptop` };
  const send = (auth?: unknown) =>
    calls.request({
      method: "POST",
      path: "/_matrix/client/v3/register",
      body: auth === undefined ? body : { ...body, auth },
      schema: sessionSchema,
    });
  let response: z.infer<typeof sessionSchema>;
  try {
    response = await send();
  } catch (error) {
    // The first answer is the challenge; the dummy stage completes it.
    if (!(error instanceof MatrixCallError) || error.uiaSession === undefined) throw error;
    response = await send({ type: "m.login.dummy", session: error.uiaSession });
  }
  return {
    account: { userId: response.user_id, localpart, password },
    session: { userId: response.user_id, deviceId: response.device_id, accessToken: response.access_token },
  };
}

/** `POST /login` with the password: a new device, as signing in on a new browser makes. */
export async function passwordLogin(
  server: Homeserver,
  account: Account,
  deviceName: string,
): Promise<Session> {
  const response = await matrixCalls(server, deviceName).request({
    method: "POST",
    path: "/_matrix/client/v3/login",
    body: {
      type: "m.login.password",
      identifier: { type: "m.id.user", user: account.localpart },
      password: account.password,
      initial_device_display_name: deviceName,
    },
    schema: sessionSchema,
  });
  return { userId: response.user_id, deviceId: response.device_id, accessToken: response.access_token };
}

/**
 * The SDK's facade for one logged-in device, over the in-page server. User-interactive auth (e.g.
 * for uploading cross-signing keys) answers with the account's password, as a real server wants.
 */
export function openClient(
  server: Homeserver,
  account: Account,
  session: Session,
  actor: string,
): Promise<E2eeClient> {
  return createE2eeClient({
    baseUrl: server.hs.baseUrl,
    fetch: server.hs.fetch,
    userId: session.userId,
    deviceId: session.deviceId,
    accessToken: session.accessToken,
    logger: server.log.sdkLogger(actor),
    uiaCallback: async (challenge) => ({
      type: "m.login.password",
      identifier: { type: "m.id.user", user: account.localpart },
      password: account.password,
      session: challenge.session,
    }),
  });
}
