import * as sdk from "matrix-js-sdk";
import { logger as rootLogger } from "matrix-js-sdk/lib/logger.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type RunningMockServer, startMockServer } from "../../src/testing/index.js";

/**
 * The proof that the mock is a homeserver an independent client can live on: two real
 * matrix-js-sdk 43 clients with rust crypto (in memory, no IndexedDB) talk to the mock over a real
 * socket. Both start their sync loops and bootstrap cross-signing; Alice creates an encrypted room
 * and invites Bob, Bob joins, and each decrypts what the other sent.
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
const uiaChallenge = z.looseObject({ session: z.string() });

let server: RunningMockServer;
const clients: sdk.MatrixClient[] = [];

beforeAll(async () => {
  server = await startMockServer({ host: "127.0.0.1", port: 0 });
});

afterAll(async () => {
  for (const client of clients) client.stopClient();
  await server?.close();
});

async function postJson(path: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** Registers through the two-step UIA flow and returns a started client with rust crypto. */
async function startClient(username: string): Promise<sdk.MatrixClient> {
  const password = `${username}-password`;
  const challenge = await postJson("/_matrix/client/v3/register", { username, password });
  const { session } = uiaChallenge.parse(challenge.json);
  const done = await postJson("/_matrix/client/v3/register", {
    username,
    password,
    auth: { type: "m.login.dummy", session },
  });
  expect(done.status).toBe(200);
  const account = registered.parse(done.json);

  const client = sdk.createClient({
    baseUrl: server.url,
    accessToken: account.access_token,
    userId: account.user_id,
    deviceId: account.device_id,
    logger: quiet,
    disableVoip: true,
  });
  clients.push(client);
  await client.initRustCrypto({ useIndexedDB: false });
  const prepared = new Promise<void>((resolve, reject) => {
    const onSync = (state: sdk.SyncState) => {
      if (state === sdk.SyncState.Prepared) {
        client.off(sdk.ClientEvent.Sync, onSync);
        resolve();
      } else if (state === sdk.SyncState.Error) {
        reject(new Error(`${username}: sync went into ERROR`));
      }
    };
    client.on(sdk.ClientEvent.Sync, onSync);
  });
  await client.startClient({ initialSyncLimit: 20 });
  await prepared;
  return client;
}

async function bootstrapCrossSigning(client: sdk.MatrixClient): Promise<void> {
  await client.getCrypto()!.bootstrapCrossSigning({
    authUploadDeviceSigningKeys: async (makeRequest) => {
      // The real flow: ask without auth, read the session from the 401, complete m.login.dummy.
      try {
        await makeRequest(null);
      } catch (err) {
        const data = (err as { data?: unknown }).data;
        const { session } = uiaChallenge.parse(data);
        await makeRequest({ type: "m.login.dummy", session });
      }
    },
  });
}

/** Resolves when `check` holds, re-checking on every sync and timeline event of the client. */
function until(
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

/** Collects the clear text of every encrypted message the client manages to decrypt. */
function decryptedBodies(client: sdk.MatrixClient, roomId: string): Map<string, string> {
  const bodies = new Map<string, string>();
  client.on(sdk.RoomEvent.Timeline, (event, room) => {
    if (room?.roomId === roomId && event.isEncrypted()) void client.decryptEventIfNeeded(event);
  });
  client.on(sdk.MatrixEventEvent.Decrypted, (event) => {
    if (event.getRoomId() !== roomId || event.isDecryptionFailure()) return;
    const body = event.getClearContent()?.body;
    if (typeof body === "string") bodies.set(event.getId()!, body);
  });
  return bodies;
}

describe("two matrix-js-sdk clients on the mock homeserver", () => {
  let alice: sdk.MatrixClient;
  let bob: sdk.MatrixClient;

  it("start their sync loops and bootstrap cross-signing", async () => {
    [alice, bob] = await Promise.all([startClient("alice"), startClient("bob")]);
    await Promise.all([bootstrapCrossSigning(alice), bootstrapCrossSigning(bob)]);

    for (const client of [alice, bob]) {
      const crypto = client.getCrypto()!;
      expect(await crypto.isCrossSigningReady()).toBe(true);
      const own = await crypto.getDeviceVerificationStatus(client.getUserId()!, client.getDeviceId()!);
      expect(own?.signedByOwner).toBe(true);
    }
  });

  it("exchange encrypted messages in a room Alice creates and Bob joins, and decrypt each other's", async () => {
    const aliceId = alice.getUserId()!;
    const bobId = bob.getUserId()!;
    const { room_id: roomId } = await alice.createRoom({
      preset: sdk.Preset.TrustedPrivateChat,
      initial_state: [
        { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
      ],
    });
    const aliceReads = decryptedBodies(alice, roomId);
    const bobReads = decryptedBodies(bob, roomId);
    // Until the room's encryption state has synced, matrix-js-sdk would send in the clear.
    await until(
      alice,
      "Alice's room is encrypted",
      () => alice.getRoom(roomId)?.hasEncryptionStateEvent() === true,
    );

    const early = await alice.sendMessage(roomId, {
      msgtype: sdk.MsgType.Text,
      body: "before Bob was invited",
    });

    // `invite()` shares the room's history with the invitee first (MSC4268): a key bundle
    // uploaded as media and announced to Bob's devices over to-device.
    await alice.invite(roomId, bobId);
    await until(bob, "Bob sees the invite", () => bob.getRoom(roomId)?.getMyMembership() === "invite");
    await bob.joinRoom(roomId);
    await until(
      alice,
      "Alice sees Bob joined",
      () => alice.getRoom(roomId)?.getMember(bobId)?.membership === "join",
    );
    await until(
      bob,
      "Bob's room is encrypted",
      () => bob.getRoom(roomId)?.hasEncryptionStateEvent() === true,
    );

    const fromAlice = await alice.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: "hello Bob" });
    const fromBob = await bob.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: "hello Alice" });

    await until(bob, "Bob decrypts Alice's message", () => bobReads.get(fromAlice.event_id) === "hello Bob");
    await until(
      alice,
      "Alice decrypts Bob's message",
      () => aliceReads.get(fromBob.event_id) === "hello Alice",
    );
    // The message from before the invite reached Bob through the shared history bundle.
    await until(
      bob,
      "Bob decrypts the message from before his invite",
      () => bobReads.get(early.event_id) === "before Bob was invited",
    );

    // What the server holds is ciphertext: the mock never saw the clear text.
    const stored = server.homeserver.state.rooms.event(fromAlice.event_id);
    expect(stored?.type).toBe("m.room.encrypted");
    expect(JSON.stringify(stored?.content)).not.toContain("hello Bob");
    expect(stored?.sender).toBe(aliceId);
    const paths = server.homeserver.control.requestLog().map((e) => `${e.method} ${e.path}`);
    expect(paths.some((p) => p.startsWith("POST /_matrix/media/v3/upload"))).toBe(true);
    expect(paths.some((p) => p.startsWith("GET /_matrix/client/v1/media/download/"))).toBe(true);
    expect(
      server.homeserver.control.requestLog().filter((e) => e.status !== null && e.status >= 500),
    ).toEqual([]);
  });
});
