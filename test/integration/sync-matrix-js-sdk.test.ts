import * as sdk from "matrix-js-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { ReceivedToDeviceEvent } from "../../src/sync/crypto-sync.js";
import {
  type ProfileName,
  profiles,
  type RunningMockServer,
  SLIDING_SYNC_PATH,
  startMockServer,
} from "../../src/testing/index.js";
import { createTestClient, inClient, type TestClient } from "./support/client-mode.js";
import { keysUploaded, registerWithUia, startJsSdkClient, until } from "./support/js-sdk-clients.js";

/**
 * Interop of the encryption loop with an independent implementation: a real matrix-js-sdk 43
 * client with rust crypto (Bob, on classic `/sync`) encrypts for Alice's device, whose crypto runs
 * only through this SDK's own sliding-sync connection (`client.sync.start()`). Bob's Olm-encrypted
 * Megolm key and a custom Olm-encrypted to-device event must come out of Alice's loop decrypted,
 * attributed to Bob's device, and the room key must decrypt Bob's room message. Run on every mock
 * profile that serves simplified sliding sync, since their `e2ee` and `to_device` habits differ
 * (omitted zero counts, no fallback-key types, acknowledgement by `pos`).
 */

const messagesPage = z.looseObject({
  chunk: z.array(z.looseObject({ event_id: z.string(), type: z.string(), sender: z.string() })),
});

const slidingProfiles = (Object.keys(profiles) as ProfileName[]).filter(
  (name) => profiles[name].unstableFeatures["org.matrix.simplified_msc3575"] === true,
);

/** Polls `check` until it holds; the loop under test runs on its own, so there is no event to await. */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe.each(slidingProfiles)(
  "a matrix-js-sdk client encrypts for a device on this SDK's sliding sync (%s)",
  (profile) => {
    let server: RunningMockServer;
    let bob: sdk.MatrixClient | undefined;
    let alice: TestClient | undefined;

    beforeAll(async () => {
      server = await startMockServer({ host: "127.0.0.1", port: 0, profile });
    });

    afterAll(async () => {
      bob?.stopClient();
      await alice?.close();
      await server?.close();
    });

    async function call(token: string, method: string, path: string, body?: unknown): Promise<unknown> {
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const json: unknown = await res.json();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    }

    it("delivers Bob's room key and custom event decrypted from Bob's device, and the key opens his message", async () => {
      const account = server.homeserver.control.createUser("alice");
      if (account === undefined) throw new Error("alice exists");
      alice = await createTestClient({
        baseUrl: server.url,
        userId: account.userId,
        deviceId: account.deviceId,
        accessToken: account.accessToken,
      });
      const received: ReceivedToDeviceEvent[] = [];
      const modes = new Set<string>();
      alice.events.on("sync.toDevice", ({ mode, events }) => {
        modes.add(mode);
        received.push(...events);
      });

      await alice.sync.start();
      expect(await alice.sync.status()).toMatchObject({ state: "running", mode: "sliding" });
      // Alice publishes her device and one-time keys from what her loop's first response reported.
      await waitFor("Alice's one-time keys are on the server", () =>
        keysUploaded(server, account.userId, "signed_curve25519:"),
      );

      bob = await startJsSdkClient(server.url, await registerWithUia(server.url, "bob"));
      const bobId = bob.getUserId()!;
      const bobDevice = bob.getDeviceId()!;
      const { room_id: roomId } = await bob.createRoom({
        preset: sdk.Preset.PrivateChat,
        invite: [account.userId],
        initial_state: [
          { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
        ],
      });
      await call(account.accessToken, "POST", `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {});
      const bobsRoom = () => bob?.getRoom(roomId);
      await until(
        bob,
        "Bob sees Alice joined his encrypted room",
        () =>
          bobsRoom()?.hasEncryptionStateEvent() === true &&
          bobsRoom()?.getMember(account.userId)?.membership === "join",
      );

      // What an app does once it sees the room's members: track them, so that the machine knows
      // Bob's device (keys/query). Olm-decrypting an event other than a room key needs it.
      await inClient(alice, "trackUsers", [bobId]);
      await alice.processOutgoingRequests();
      await waitFor(
        "Alice's machine knows Bob's device",
        async () => alice !== undefined && (await inClient(alice, "knowsDevice", bobId, bobDevice)),
      );
      const bobsCurve25519 = (await bob.getCrypto()!.getOwnDeviceKeys()).curve25519;

      const sent = await bob.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: "hello Alice" });

      // Bob's device is the sender that his Olm session proves: its Curve25519 key. crypto-wasm
      // names the device id too, except for `m.room_key`, whose sender checks it defers.
      const fromBob = (e: ReceivedToDeviceEvent) =>
        e.kind === "decrypted" &&
        e.sender?.userId === bobId &&
        e.sender.curve25519Key === bobsCurve25519 &&
        (e.event.type === "m.room_key" || e.sender.deviceId === bobDevice);
      await waitFor("Alice's loop decrypts Bob's room key", () =>
        received.some((e) => fromBob(e) && e.event.type === "m.room_key"),
      );
      const roomKey = received.find((e) => fromBob(e) && e.event.type === "m.room_key");
      expect(roomKey?.event).toMatchObject({
        type: "m.room_key",
        sender: bobId,
        content: { algorithm: "m.megolm.v1.aes-sha2", room_id: roomId },
      });
      expect([undefined, bobDevice]).toContain(roomKey?.sender?.deviceId);

      // The room event as the server stores it, read like any client would.
      const page = messagesPage.parse(
        await call(
          account.accessToken,
          "GET",
          `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`,
        ),
      );
      const encrypted = page.chunk.find((e) => e.event_id === sent.event_id);
      expect(encrypted).toMatchObject({ type: "m.room.encrypted", sender: bobId });
      expect(JSON.stringify(encrypted)).not.toContain("hello Alice");
      const decrypted = await inClient(alice, "decryptRoomEvent", { ...encrypted, room_id: roomId }, roomId);
      expect(JSON.parse(decrypted.event)).toMatchObject({
        type: "m.room.message",
        content: { msgtype: "m.text", body: "hello Alice" },
      });
      expect(decrypted.sender).toBe(bobId);
      expect(decrypted.senderDevice).toBe(bobDevice);

      // An Olm-encrypted event of the app's own type, through matrix-js-sdk's to-device API.
      const batch = await bob
        .getCrypto()!
        .encryptToDeviceMessages(
          "org.example.ping",
          [{ userId: account.userId, deviceId: account.deviceId }],
          {
            note: "a custom to-device event",
          },
        );
      expect(batch.batch).toHaveLength(1);
      expect(batch.eventType).toBe("m.room.encrypted");
      await bob.queueToDevice(batch);
      await waitFor("Alice's loop decrypts Bob's custom event", () =>
        received.some((e) => fromBob(e) && e.event.type === "org.example.ping"),
      );
      expect(received.find((e) => fromBob(e) && e.event.type === "org.example.ping")?.event).toMatchObject({
        type: "org.example.ping",
        sender: bobId,
        content: { note: "a custom to-device event" },
      });
      expect([...modes]).toEqual(["sliding"]);
      // Nothing came out of the loop that it could not decrypt.
      expect(received.filter((e) => e.kind !== "decrypted" && e.kind !== "plaintext")).toEqual([]);

      // Every message reached Alice through the SDK's one connection, which then acknowledged it.
      await waitFor(
        "Alice's inbox is acknowledged",
        () => server.homeserver.control.toDeviceInbox(account.userId, account.deviceId).events.length === 0,
      );
      const alicesSyncs = server.homeserver.control
        .requestLog()
        .filter((e) => e.userId === account.userId && e.path.endsWith("/sync"));
      expect(alicesSyncs.length).toBeGreaterThan(1);
      for (const entry of alicesSyncs) {
        expect(entry.path).toBe(SLIDING_SYNC_PATH);
        expect(entry.body).toMatchObject({
          conn_id: "matrix-e2ee-devices-encryption",
          extensions: { e2ee: { enabled: true }, to_device: { enabled: true } },
        });
      }
      expect(
        server.homeserver.control.requestLog().filter((e) => e.status !== null && e.status >= 500),
      ).toEqual([]);
    });
  },
);
