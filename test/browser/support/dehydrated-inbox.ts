import { EncryptionSettings, RoomId, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { z } from "zod";
import { createE2eeClient, type E2eeClient } from "../../../src/client.js";
import { claimMissingSessions } from "../../../src/crypto/claim-sessions.js";
import { sendOutgoingRequest } from "../../../src/crypto/send-outgoing-request.js";
import { createMatrixHttp } from "../../../src/http/matrix-http.js";
import type { RunningMockServer } from "../../../src/testing/index.js";

/**
 * A dehydrated device with a full inbox, prepared in Node over the mock's HTTP API for a browser
 * test to drain (the same preparation as bench/dehydration-drain.ts and the integration fixtures,
 * kept here so the browser tests do not follow changes to those): Alice sets up cross-signing,
 * secret storage and a dehydrated device and goes offline; Bob, a real crypto-wasm sender, shares
 * a Megolm session with her in each of `rooms` rooms, so `rooms` Olm-encrypted `m.room_key`
 * to-device events wait in the dehydrated device's inbox.
 */

const PASSWORD = "the browser drain test's password";
const dummyAuth = async () => ({ type: "m.login.dummy" });
const loginResponse = z.looseObject({ user_id: z.string(), device_id: z.string(), access_token: z.string() });

export interface BrowserSession {
  baseUrl: string;
  userId: string;
  deviceId: string;
  accessToken: string;
}

/** A message Bob sent in one of the rooms: decryptable only with the room key the drain imports. */
export interface SentMessage {
  roomId: string;
  sessionId: string;
  body: string;
  event: Record<string, unknown>;
}

export interface DehydratedInbox {
  aliceId: string;
  recoveryKey: string;
  dehydratedDeviceId: string;
  /** One per room, in order. */
  messages: SentMessage[];
  /** A new login of Alice, as a new browser would make: a session for the page. */
  newLogin(): Promise<BrowserSession>;
}

function openClient(
  server: RunningMockServer,
  session: Omit<BrowserSession, "baseUrl">,
): Promise<E2eeClient> {
  return createE2eeClient({ baseUrl: server.url, ...session, uiaCallback: dummyAuth });
}

export async function prepareDehydratedInbox(
  server: RunningMockServer,
  rooms: number,
  localparts = { alice: "alice", bob: "bob" },
): Promise<DehydratedInbox> {
  const aliceAccount = server.homeserver.control.createUser(localparts.alice, { password: PASSWORD });
  const bobAccount = server.homeserver.control.createUser(localparts.bob, { password: PASSWORD });
  if (aliceAccount === undefined || bobAccount === undefined) throw new Error("the users exist already");

  const alice = await openClient(server, aliceAccount);
  let recoveryKey: string;
  let dehydratedDeviceId: string;
  try {
    const boot = await alice.crossSigning.bootstrap({ createSecretStorageKey: true });
    if (boot.recoveryKey === undefined || boot.secretStorageKey === undefined) {
      throw new Error("bootstrap created no secret-storage key");
    }
    recoveryKey = boot.recoveryKey;
    // With no device on the server, a replacement is the first upload.
    ({ deviceId: dehydratedDeviceId } = await alice.dehydration.replaceNow({
      secretStorageKey: boot.secretStorageKey,
    }));
  } finally {
    await alice.close();
  }

  const bob = await openClient(server, bobAccount);
  const bobHttp = createMatrixHttp({ baseUrl: server.url, accessToken: bobAccount.accessToken });
  const messages: SentMessage[] = [];
  try {
    const machine = bob.olmMachine;
    // crypto-wasm takes ownership of the ids it is passed: a fresh one for every call.
    const aliceId = () => new UserId(aliceAccount.userId);
    await machine.updateTrackedUsers([aliceId()]);
    await bob.processOutgoingRequests();
    await claimMissingSessions(machine, bobHttp, [aliceAccount.userId]);
    for (let i = 0; i < rooms; i++) {
      const roomId = `!room${i}:${server.homeserver.state.serverName}`;
      const room = new RoomId(roomId);
      for (const request of await machine.shareRoomKey(room, [aliceId()], new EncryptionSettings())) {
        await sendOutgoingRequest(machine, bobHttp, request);
      }
      const body = `message ${i} for Alice's eyes only`;
      const content = JSON.parse(
        await machine.encryptRoomEvent(room, "m.room.message", JSON.stringify({ msgtype: "m.text", body })),
      ) as { session_id: string };
      messages.push({
        roomId,
        sessionId: content.session_id,
        body,
        event: {
          type: "m.room.encrypted",
          content,
          sender: bobAccount.userId,
          event_id: `$message${i}`,
          origin_server_ts: 1_700_000_000_000 + i,
          room_id: roomId,
        },
      });
    }
  } finally {
    await bob.close();
  }

  const http = createMatrixHttp({ baseUrl: server.url });
  return {
    aliceId: aliceAccount.userId,
    recoveryKey,
    dehydratedDeviceId,
    messages,
    async newLogin() {
      const login = await http.request({
        method: "POST",
        path: "/_matrix/client/v3/login",
        body: {
          type: "m.login.password",
          identifier: { type: "m.id.user", user: aliceAccount.userId },
          password: PASSWORD,
        },
        schema: loginResponse,
        unauthenticated: true,
      });
      return {
        baseUrl: server.url,
        userId: login.user_id,
        deviceId: login.device_id,
        accessToken: login.access_token,
      };
    },
  };
}
