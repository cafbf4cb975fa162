import * as sdk from "matrix-js-sdk";
import { logger as rootLogger } from "matrix-js-sdk/lib/logger.js";
import { expect } from "vitest";
import { z } from "zod";
import type { RunningMockServer } from "../../../src/testing/index.js";

/**
 * Real matrix-js-sdk 43 clients for the interop tests: rust crypto in memory (no IndexedDB), on
 * classic `/sync` against the mock homeserver over a real socket, and silent. Importing this
 * module silences matrix-js-sdk's logging for the whole file.
 */

// matrix-js-sdk's child loggers reset their own level, so the method factory itself is replaced.
// The root is a `loglevel` logger, which the package's types do not say.
const root = rootLogger as unknown as {
  setLevel(level: "silent"): void;
  methodFactory: () => () => void;
  rebuild(): void;
};
root.setLevel("silent");
root.methodFactory = () => () => {};
root.rebuild();

interface QuietLogger {
  trace(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  getChild(namespace: string): QuietLogger;
}
const noop = () => {};
const quiet: QuietLogger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  getChild: () => quiet,
};

const registered = z.looseObject({ user_id: z.string(), access_token: z.string(), device_id: z.string() });

/** The 401 of a user-interactive auth step: the session to complete it in. */
export const uiaChallenge = z.looseObject({ session: z.string() });

/** A logged-in device a matrix-js-sdk client can run on. */
export interface JsSdkSession {
  userId: string;
  deviceId: string;
  accessToken: string;
}

/**
 * Registers `username` (password `<username>-password`) through the two-step UIA flow a client
 * goes through: the first request is answered with a session, the second completes it with
 * `m.login.dummy`, which must succeed.
 */
export async function registerWithUia(baseUrl: string, username: string): Promise<JsSdkSession> {
  const post = async (body: unknown) => {
    const res = await fetch(`${baseUrl}/_matrix/client/v3/register`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as unknown };
  };
  const credentials = { username, password: `${username}-password` };
  const { session } = uiaChallenge.parse((await post(credentials)).json);
  const done = await post({ ...credentials, auth: { type: "m.login.dummy", session } });
  expect(done.status).toBe(200);
  const account = registered.parse(done.json);
  return { userId: account.user_id, deviceId: account.device_id, accessToken: account.access_token };
}

/**
 * A matrix-js-sdk client with rust crypto (in memory) on `session`'s device, started and synced
 * once (`SyncState.Prepared`); a sync that goes into `ERROR` first fails it. `onCreated` is handed
 * the client before its crypto starts, so that a test can stop it whatever happens next.
 */
export async function startJsSdkClient(
  baseUrl: string,
  session: JsSdkSession,
  options: { onCreated?: (client: sdk.MatrixClient) => void } = {},
): Promise<sdk.MatrixClient> {
  const client = sdk.createClient({
    baseUrl,
    accessToken: session.accessToken,
    userId: session.userId,
    deviceId: session.deviceId,
    logger: quiet,
    disableVoip: true,
  });
  options.onCreated?.(client);
  await client.initRustCrypto({ useIndexedDB: false });
  const prepared = new Promise<void>((resolve, reject) => {
    const onSync = (state: sdk.SyncState) => {
      if (state === sdk.SyncState.Prepared) {
        client.off(sdk.ClientEvent.Sync, onSync);
        resolve();
      } else if (state === sdk.SyncState.Error) {
        reject(new Error(`${session.userId}: matrix-js-sdk sync went into ERROR`));
      }
    };
    client.on(sdk.ClientEvent.Sync, onSync);
  });
  await client.startClient({ initialSyncLimit: 20 });
  await prepared;
  return client;
}

/**
 * Whether the server has taken (200) a `keys/upload` of `userId`'s whose body holds `what` (such
 * as `"device_keys"` or `signed_curve25519:`): what the other side waits for before it encrypts.
 */
export function keysUploaded(server: RunningMockServer, userId: string, what: string): boolean {
  return server.homeserver.control
    .requestLog()
    .some(
      (e) =>
        e.userId === userId &&
        e.path === "/_matrix/client/v3/keys/upload" &&
        e.status === 200 &&
        JSON.stringify(e.body).includes(what),
    );
}

/** Resolves when `check` holds, re-checking on every sync, timeline, member and decryption event. */
export function until(
  client: sdk.MatrixClient,
  what: string,
  check: () => boolean,
  timeoutMs = 20_000,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (!check()) return;
      cleanup();
      resolve();
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting until ${what}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      client.off(sdk.ClientEvent.Sync, tick);
      client.off(sdk.RoomEvent.Timeline, tick);
      client.off(sdk.RoomStateEvent.Members, tick);
      client.off(sdk.MatrixEventEvent.Decrypted, tick);
    };
    client.on(sdk.ClientEvent.Sync, tick);
    client.on(sdk.RoomEvent.Timeline, tick);
    client.on(sdk.RoomStateEvent.Members, tick);
    client.on(sdk.MatrixEventEvent.Decrypted, tick);
    tick();
  });
}

/** One room event as matrix-js-sdk's own decryption path opened it. */
export interface JsSdkDecrypted {
  body: unknown;
  sender: string | undefined;
  /** The Curve25519 key of the device that created the Megolm session, as matrix-js-sdk reports it. */
  senderKey: string | null;
  sessionId: unknown;
}

/**
 * What matrix-js-sdk's own decryption path makes of the room's encrypted events from now on: the
 * clear content of every event it decrypted (`MatrixEventEvent.Decrypted`), by event id.
 */
export function jsSdkDecryptions(client: sdk.MatrixClient, roomId: string): Map<string, JsSdkDecrypted> {
  const out = new Map<string, JsSdkDecrypted>();
  client.on(sdk.RoomEvent.Timeline, (event, room) => {
    if (room?.roomId === roomId && event.isEncrypted()) void client.decryptEventIfNeeded(event);
  });
  client.on(sdk.MatrixEventEvent.Decrypted, (event) => {
    if (event.getRoomId() !== roomId || event.isDecryptionFailure()) return;
    out.set(event.getId()!, {
      body: event.getClearContent()?.body,
      sender: event.getSender(),
      senderKey: event.getSenderKey(),
      sessionId: event.getWireContent().session_id,
    });
  });
  return out;
}
