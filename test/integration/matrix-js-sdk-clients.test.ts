import * as sdk from "matrix-js-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningMockServer, startMockServer } from "../../src/testing/index.js";
import {
  jsSdkDecryptions,
  registerWithUia,
  startJsSdkClient,
  uiaChallenge,
  until,
} from "./support/js-sdk-clients.js";

/**
 * The proof that the mock is a homeserver an independent client can live on: two real
 * matrix-js-sdk 43 clients with rust crypto (in memory, no IndexedDB) talk to the mock over a real
 * socket. Both start their sync loops and bootstrap cross-signing; Alice creates an encrypted room
 * and invites Bob, Bob joins, and each decrypts what the other sent.
 */

let server: RunningMockServer;
const clients: sdk.MatrixClient[] = [];

beforeAll(async () => {
  server = await startMockServer({ host: "127.0.0.1", port: 0 });
});

afterAll(async () => {
  for (const client of clients) client.stopClient();
  await server?.close();
});

/** Registers through the two-step UIA flow and returns a started client with rust crypto. */
async function startClient(username: string): Promise<sdk.MatrixClient> {
  const session = await registerWithUia(server.url, username);
  return startJsSdkClient(server.url, session, { onCreated: (client) => clients.push(client) });
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
    const aliceReads = jsSdkDecryptions(alice, roomId);
    const bobReads = jsSdkDecryptions(bob, roomId);
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

    await until(
      bob,
      "Bob decrypts Alice's message",
      () => bobReads.get(fromAlice.event_id)?.body === "hello Bob",
    );
    await until(
      alice,
      "Alice decrypts Bob's message",
      () => aliceReads.get(fromBob.event_id)?.body === "hello Alice",
    );
    // The message from before the invite reached Bob through the shared history bundle.
    await until(
      bob,
      "Bob decrypts the message from before his invite",
      () => bobReads.get(early.event_id)?.body === "before Bob was invited",
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
