import { z } from "zod";
import type { CreateE2eeClientOptions, E2eeClientEvents } from "../../../src/client-options.js";
import { DEHYDRATED_DEVICE_PATH } from "../../../src/dehydration/device/names.js";
import { createMatrixHttp, type FetchLike, type MatrixHttpClient } from "../../../src/http/matrix-http.js";
import { decodeBase64 } from "../../../src/secret-storage/base64.js";
import type { SecretStorageKey } from "../../../src/secret-storage/secret-storage.js";
import type { RequestLogEntry, RunningMockServer } from "../../../src/testing/index.js";
import { createTestClient, inClient, type TestClient } from "./client-mode.js";
import type { LeakWatch } from "./foundation-fixtures.js";

/**
 * Shared setup of the dehydrated-device tests: Alice with cross-signing, secret storage and a
 * dehydrated device; Bob, a real sender, sharing room keys with her while she is offline; new
 * logins of Alice that restore from the recovery key, drain, and decrypt; and `client.events` as
 * an app hears it, every name of the stream in one typed list.
 */

export const PASSWORD = "correct horse battery staple";
const dummyAuth = async () => ({ type: "m.login.dummy" });
const loginResponse = z.looseObject({ user_id: z.string(), device_id: z.string(), access_token: z.string() });

export interface Session {
  userId: string;
  deviceId: string;
  accessToken: string;
}

export interface Alice {
  userId: string;
  recoveryKey: string;
  secretStorageKey: SecretStorageKey;
  dehydratedDeviceId: string;
  /** Her first device, closed once the dehydrated device is up: from then on she is offline. */
  firstDevice: Session;
}

export interface RoomMessage {
  roomId: string;
  body: string;
  /** The sender's Curve25519 key: the `senderKey` of the room key imported for this message. */
  senderKey: string;
  /** The encrypted room event as the room timeline would hold it. */
  event: Record<string, unknown>;
}

/** Client options, plus the leak watch that gets the client's logs, errors, events and token. */
export interface FixtureClientOptions extends Partial<CreateE2eeClientOptions> {
  watch?: LeakWatch | undefined;
}

/** One event as `client.events` delivered it, its payload typed by its name. */
export type ClientEvent = {
  [K in keyof E2eeClientEvents]: { name: K; payload: E2eeClientEvents[K] };
}[keyof E2eeClientEvents];

/**
 * Records, in order, every event of `client.events` whose name `include` accepts (default: all),
 * through the stream's `onAny`. The list keeps growing until the client is closed.
 */
export function recordEvents(
  client: TestClient,
  include: (name: keyof E2eeClientEvents) => boolean = () => true,
): ClientEvent[] {
  const seen: ClientEvent[] = [];
  client.events.onAny((name, payload) => {
    if (include(name)) seen.push({ name, payload } as ClientEvent);
  });
  return seen;
}

/** The payloads of `name` in a recording. */
export function payloadsOf<K extends keyof E2eeClientEvents>(
  seen: readonly ClientEvent[],
  name: K,
): E2eeClientEvents[K][] {
  return seen.filter((e) => e.name === name).map((e) => e.payload as E2eeClientEvents[K]);
}

/** A transport of the test's own for `session`, as an app makes its own calls (not the client's). */
export function sessionHttp(server: RunningMockServer, session: Session): MatrixHttpClient {
  return createMatrixHttp({ baseUrl: server.url, accessToken: session.accessToken });
}

export async function openClient(
  server: RunningMockServer,
  session: Session,
  options: FixtureClientOptions = {},
): Promise<TestClient> {
  const { watch, ...clientOptions } = options;
  watch?.secret(session.accessToken);
  const client = await createTestClient({
    baseUrl: server.url,
    userId: session.userId,
    deviceId: session.deviceId,
    accessToken: session.accessToken,
    uiaCallback: dummyAuth,
    ...(watch === undefined ? {} : { logger: watch.logger }),
    ...clientOptions,
  });
  watch?.watch(client);
  return client;
}

/** Registers the dehydration key cached in `client`'s crypto store (if any) as a secret. */
export async function watchDehydrationKey(watch: LeakWatch, client: TestClient): Promise<void> {
  const cached = await inClient(client, "cachedDehydrationKey");
  if (cached === undefined) return;
  const bytes = decodeBase64(cached);
  if (bytes !== undefined) watch.secretBytes(bytes);
}

/** Registers everything of Alice's that must never be printed. */
export function watchAlice(watch: LeakWatch, alice: Alice): void {
  watch.secret(alice.recoveryKey);
  watch.secretBytes(alice.secretStorageKey.key);
  watch.secret(alice.firstDevice.accessToken);
}

/** A fresh login over `POST /login`, as a new browser would make. */
export async function passwordLogin(server: RunningMockServer, userId: string): Promise<Session> {
  const http = createMatrixHttp({ baseUrl: server.url });
  const session = await http.request({
    method: "POST",
    path: "/_matrix/client/v3/login",
    body: { type: "m.login.password", identifier: { type: "m.id.user", user: userId }, password: PASSWORD },
    schema: loginResponse,
    unauthenticated: true,
  });
  return { userId: session.user_id, deviceId: session.device_id, accessToken: session.access_token };
}

/** Alice sets up cross-signing and secret storage, uploads a dehydrated device, and goes offline. */
export async function aliceWithDehydratedDevice(
  server: RunningMockServer,
  localpart = "alice",
  watch?: LeakWatch,
): Promise<Alice> {
  const created = server.homeserver.control.createUser(localpart, { password: PASSWORD });
  if (!created) throw new Error(`${localpart} exists`);
  const client = await openClient(server, created, { watch });
  try {
    const boot = await client.crossSigning.bootstrap({ createSecretStorageKey: true });
    if (watch !== undefined) {
      watch.secret(boot.recoveryKey);
      watch.secretBytes(boot.secretStorageKey!.key);
    }
    // With no device on the server, a replacement is the first upload.
    const { deviceId } = await client.dehydration.replaceNow({ secretStorageKey: boot.secretStorageKey! });
    if (watch !== undefined) await watchDehydrationKey(watch, client);
    return {
      userId: created.userId,
      recoveryKey: boot.recoveryKey!,
      secretStorageKey: boot.secretStorageKey!,
      dehydratedDeviceId: deviceId,
      firstDevice: created,
    };
  } finally {
    await client.close();
  }
}

/**
 * Bob, a real sender with his own crypto-wasm machine, shares a Megolm session with Alice in each
 * of `rooms` rooms and sends one message there. Alice is offline, so the room keys wait in her
 * dehydrated device's inbox. Returns the encrypted messages.
 */
export async function bobSharesRoomKeys(
  server: RunningMockServer,
  aliceId: string,
  rooms: number,
  localpart = "bob",
  watch?: LeakWatch,
): Promise<RoomMessage[]> {
  const created = server.homeserver.control.createUser(localpart, { password: PASSWORD });
  if (!created) throw new Error(`${localpart} exists`);
  const bob = await openClient(server, created, { watch });
  // Claiming and sharing hand back requests for the sender to send himself, over his own transport.
  try {
    return await inClient(
      bob,
      "shareRoomKeys",
      server.url,
      created.accessToken,
      aliceId,
      rooms,
      server.homeserver.state.serverName,
    );
  } finally {
    await bob.close();
  }
}

/** A new login of Alice that restores her keys from the recovery key. */
export async function newLogin(
  server: RunningMockServer,
  alice: Alice,
  options: FixtureClientOptions = {},
  session?: Session,
): Promise<{ client: TestClient; session: Session; secretStorageKey: SecretStorageKey }> {
  const login = session ?? (await passwordLogin(server, alice.userId));
  const client = await openClient(server, login, options);
  const restored = await client.crossSigning.restoreFromRecoveryKey(alice.recoveryKey);
  return { client, session: login, secretStorageKey: restored.secretStorageKey };
}

/** How many of `messages` the client decrypts to the body that was sent. */
export async function decryptable(client: TestClient, messages: readonly RoomMessage[]): Promise<number> {
  let ok = 0;
  for (const message of messages) {
    try {
      const decrypted = await inClient(client, "decryptRoomEvent", message.event, message.roomId);
      if (JSON.parse(decrypted.event).content.body === message.body) ok++;
    } catch {
      // Missing room key: counted as not decryptable.
    }
  }
  return ok;
}

/** The events requests in the server's log, oldest first. */
export function eventsRequests(server: RunningMockServer, deviceId: string): RequestLogEntry[] {
  const path = `${DEHYDRATED_DEVICE_PATH}/${encodeURIComponent(deviceId)}/events`;
  return server.homeserver.control.requestLog().filter((e) => e.path === path);
}

/** One events request as the client sent it: which variant, from which cursor. */
export interface SentEventsRequest {
  method: string;
  /** `from` (GET) or `next_batch` (POST); `undefined` for the first page. */
  cursor: string | undefined;
}

/**
 * A `fetch` that notes the cursor of every events request before passing it to the real one, as
 * the client sent it: including requests a fault stopped before the server logged them.
 */
export function cursorRecordingFetch(sent: SentEventsRequest[]): FetchLike {
  return async (input, init) => {
    const url = new URL(input.url);
    if (url.pathname.endsWith("/events") && url.pathname.includes("/dehydrated_device/")) {
      let cursor: string | undefined;
      if (input.method === "GET") cursor = url.searchParams.get("from") ?? undefined;
      else {
        const text = await input.clone().text();
        cursor = text ? (JSON.parse(text) as { next_batch?: string }).next_batch : undefined;
      }
      sent.push({ method: input.method, cursor });
    }
    return globalThis.fetch(input, init);
  };
}
