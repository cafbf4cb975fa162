import {
  createE2eeClient,
  createMatrixHttp,
  type E2eeClient,
  type MatrixHttpClient,
  withUserInteractiveAuth,
} from "matrix-e2ee-devices";
import type { MockHomeserver } from "matrix-e2ee-devices/testing";
import { z } from "zod";
import type { LogPanel } from "./log-panel.js";

/** What a login hands an app. Nothing here is ever written to the log but `userId`/`deviceId`. */
export interface Session {
  userId: string;
  deviceId: string;
  accessToken: string;
}

/** A user of the demo; the password is random and stays in memory, as a password manager's would. */
export interface Account {
  userId: string;
  localpart: string;
  password: string;
}

const sessionSchema = z.looseObject({ user_id: z.string(), device_id: z.string(), access_token: z.string() });

function transport(hs: MockHomeserver, log: LogPanel, actor: string): MatrixHttpClient {
  return createMatrixHttp({ baseUrl: hs.baseUrl, fetch: hs.fetch, logger: log.sdkLogger(actor) });
}

function randomPassword(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...bytes));
}

/** `POST /register` through the server's user-interactive auth (`m.login.dummy`). */
export async function register(
  hs: MockHomeserver,
  log: LogPanel,
  localpart: string,
  displayName: string,
): Promise<{ account: Account; session: Session }> {
  const http = transport(hs, log, displayName);
  const password = randomPassword();
  const response = await withUserInteractiveAuth(
    (auth) =>
      http.request({
        method: "POST",
        path: "/_matrix/client/v3/register",
        body: { username: localpart, password, initial_device_display_name: `${displayName}'s laptop`, auth },
        schema: sessionSchema,
        unauthenticated: true,
      }),
    async (challenge) => ({ type: "m.login.dummy", session: challenge.session }),
  );
  return {
    account: { userId: response.user_id, localpart, password },
    session: { userId: response.user_id, deviceId: response.device_id, accessToken: response.access_token },
  };
}

/** `POST /login` with the password: a new device, as signing in on a new browser makes. */
export async function passwordLogin(
  hs: MockHomeserver,
  log: LogPanel,
  account: Account,
  deviceName: string,
): Promise<Session> {
  const response = await transport(hs, log, deviceName).request({
    method: "POST",
    path: "/_matrix/client/v3/login",
    body: {
      type: "m.login.password",
      identifier: { type: "m.id.user", user: account.localpart },
      password: account.password,
      initial_device_display_name: deviceName,
    },
    schema: sessionSchema,
    unauthenticated: true,
  });
  return { userId: response.user_id, deviceId: response.device_id, accessToken: response.access_token };
}

/**
 * The SDK's facade for one logged-in device, over the in-page server. User-interactive auth (e.g.
 * for uploading cross-signing keys) answers with the account's password, as a real server wants.
 */
export function openClient(
  hs: MockHomeserver,
  log: LogPanel,
  account: Account,
  session: Session,
  actor: string,
): Promise<E2eeClient> {
  return createE2eeClient({
    baseUrl: hs.baseUrl,
    fetch: hs.fetch,
    userId: session.userId,
    deviceId: session.deviceId,
    accessToken: session.accessToken,
    logger: log.sdkLogger(actor),
    uiaCallback: async (challenge) => ({
      type: "m.login.password",
      identifier: { type: "m.id.user", user: account.localpart },
      password: account.password,
      session: challenge.session,
    }),
  });
}
