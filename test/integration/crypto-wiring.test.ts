import {
  DeviceId,
  DeviceLists,
  initAsync,
  type OlmMachine,
  UserId,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { claimMissingSessions } from "../../src/crypto/claim-sessions.js";
import {
  bootstrapCrossSigning,
  getCrossSigningStatus,
  isDeviceCrossSignedByOwner,
} from "../../src/crypto/cross-signing.js";
import { createOlmMachine } from "../../src/crypto/olm-machine.js";
import { OutgoingRequestLoop } from "../../src/crypto/outgoing-requests.js";
import { type UiaChallenge, withUserInteractiveAuth } from "../../src/crypto/user-interactive-auth.js";
import { createMatrixHttp, type MatrixHttpClient } from "../../src/http/matrix-http.js";
import type { RetryConfig } from "../../src/http/retry-policy.js";
import { type RunningMockServer, startMockServer } from "../../src/testing/index.js";
import { ManualClock } from "../../src/testing/manual-clock.js";
import { type Clock, systemClock } from "../../src/time/clock.js";

/**
 * The crypto wiring end to end: real crypto-wasm machines, the SDK's own transport, the mock
 * homeserver on a real socket. Two users bootstrap cross-signing, each sees the other's devices as
 * cross-signed by their owner, and one sends the other an Olm-encrypted to-device message.
 */

interface Client {
  userId: string;
  deviceId: string;
  password: string;
  http: MatrixHttpClient;
  machine: OlmMachine;
  loop: OutgoingRequestLoop;
  /** Every `requestFailed` the loop reported; a healthy run has none. */
  failures: unknown[];
}

const registerResponse = z.looseObject({
  user_id: z.string(),
  access_token: z.string(),
  device_id: z.string(),
});

let server: RunningMockServer;
const clients: Client[] = [];

beforeAll(async () => {
  await initAsync();
  server = await startMockServer({ host: "127.0.0.1", port: 0 });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.loop.stop()));
  await server?.close();
});

async function register(
  username: string,
  options: { retry?: Partial<RetryConfig>; loopClock?: Clock } = {},
): Promise<Client> {
  const password = `${username}-password`;
  const http = createMatrixHttp({ baseUrl: server.url, retry: options.retry });
  // Registration takes the same UIA loop as the cross-signing upload (the mock asks for m.login.dummy).
  const account = await withUserInteractiveAuth(
    (auth) =>
      http.request({
        method: "POST",
        path: "/_matrix/client/v3/register",
        body: { username, password, initial_device_display_name: `${username}'s test device`, auth },
        schema: registerResponse,
        unauthenticated: true,
      }),
    async () => ({ type: "m.login.dummy" }),
  );
  http.setAccessToken(account.access_token);
  const machine = await createOlmMachine({ userId: account.user_id, deviceId: account.device_id });
  const loop = new OutgoingRequestLoop({ machine, http, clock: options.loopClock ?? systemClock });
  const failures: unknown[] = [];
  loop.events.on("requestFailed", (e) => failures.push(e.error));
  const client = {
    userId: account.user_id,
    deviceId: account.device_id,
    password,
    http,
    machine,
    loop,
    failures,
  };
  clients.push(client);
  return client;
}

/** Answers the server's UIA challenge with the account password, as an app's dialog would. */
function passwordAuth(client: Client, seen: UiaChallenge[]) {
  return async (challenge: UiaChallenge) => {
    seen.push(challenge);
    return {
      type: "m.login.password",
      identifier: { type: "m.id.user", user: client.userId },
      password: client.password,
    };
  };
}

const sendToDeviceResponse = z.looseObject({});

describe("crypto wiring over HTTP", () => {
  let alice: Client;
  let bob: Client;

  it("bootstraps cross-signing for two users through the outgoing-request loop and UIA", async () => {
    alice = await register("alice");
    bob = await register("bob");
    for (const c of [alice, bob]) {
      await c.loop.run();
      expect(await c.machine.outgoingRequests()).toEqual([]);
    }

    const challenges: UiaChallenge[] = [];
    for (const c of [alice, bob]) {
      await bootstrapCrossSigning({
        machine: c.machine,
        http: c.http,
        authCallback: passwordAuth(c, challenges),
      });
      expect(await getCrossSigningStatus(c.machine)).toEqual({
        hasMaster: true,
        hasSelfSigning: true,
        hasUserSigning: true,
      });
    }

    // Replacing an existing identity makes the server ask for the password (Synapse and the mock
    // let only the first upload through without UIA).
    const before = challenges.length;
    await bootstrapCrossSigning({
      machine: bob.machine,
      http: bob.http,
      reset: true,
      authCallback: passwordAuth(bob, challenges),
    });
    expect(challenges.length).toBe(before + 1);
    expect(challenges.at(-1)!.flows.some((f) => f.stages.includes("m.login.password"))).toBe(true);
  });

  it("lets each user see the other's device as cross-signed by its owner", async () => {
    await alice.machine.updateTrackedUsers([new UserId(bob.userId)]);
    await bob.machine.updateTrackedUsers([new UserId(alice.userId)]);
    await Promise.all([alice.loop.run(), bob.loop.run()]);

    expect(await isDeviceCrossSignedByOwner(alice.machine, bob.userId, bob.deviceId)).toBe(true);
    expect(await isDeviceCrossSignedByOwner(bob.machine, alice.userId, alice.deviceId)).toBe(true);
    expect(await isDeviceCrossSignedByOwner(alice.machine, bob.userId, "NOSUCHDEVICE")).toBeUndefined();
    expect([...alice.failures, ...bob.failures]).toEqual([]);
  });

  it("delivers an Olm-encrypted to-device message that only the recipient can read", async () => {
    expect(await claimMissingSessions(alice.machine, alice.http, [bob.userId])).toBe(true);

    const device = await alice.machine.getDevice(new UserId(bob.userId), new DeviceId(bob.deviceId));
    expect(device).toBeDefined();
    const secret = { body: "the eagle lands at noon", nonce: crypto.randomUUID() };
    const encrypted = JSON.parse(await device!.encryptToDeviceEvent("org.example.secret", secret));
    expect(JSON.stringify(encrypted)).not.toContain(secret.nonce);
    await alice.http.request({
      method: "PUT",
      path: `/_matrix/client/v3/sendToDevice/m.room.encrypted/${encodeURIComponent(crypto.randomUUID())}`,
      body: { messages: { [bob.userId]: { [bob.deviceId]: encrypted } } },
      schema: sendToDeviceResponse,
      retry: "safe",
    });

    // The test reads Bob's inbox through the mock's control API, which acknowledges nothing.
    const inbox = server.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId).events;
    expect(inbox).toHaveLength(1);
    expect(inbox[0]).toMatchObject({ type: "m.room.encrypted", sender: alice.userId });

    const processed = await bob.machine.receiveSyncChanges(
      JSON.stringify(inbox),
      new DeviceLists(),
      new Map([["signed_curve25519", 50]]),
      new Set(),
    );
    expect(processed).toHaveLength(1);
    const decrypted = JSON.parse((processed[0] as { rawEvent: string }).rawEvent);
    expect(decrypted.type).toBe("org.example.secret");
    expect(decrypted.content).toEqual(secret);
    expect(decrypted.sender).toBe(alice.userId);
  });
});

describe("crypto wiring under injected faults", () => {
  /** Fast real-time backoff, so a replay the transport should not make would show up at once. */
  const fastRetry: Partial<RetryConfig> = { baseDelayMs: 1, maxDelayMs: 5 };

  const logged = (method: string, suffix: string) =>
    server.homeserver.control.requestLog().filter((e) => e.method === method && e.path.endsWith(suffix));

  it("recovers a keys upload whose response was lost, as the server takes identical keys again", async () => {
    const carol = await register("carol", { retry: fastRetry });
    server.homeserver.control.scriptFailure({
      method: "POST",
      path: "/_matrix/client/v3/keys/upload",
      when: "after",
      drop: true,
    });
    await carol.loop.run();
    expect(carol.failures).toEqual([]);
    const uploads = logged("POST", "/keys/upload").filter((e) => e.userId === carol.userId || e.dropped);
    expect(uploads.map((e) => (e.dropped ? "dropped" : e.status))).toEqual(["dropped", 200]);
    expect(server.homeserver.state.keys.oneTimeKeyCounts(carol.userId, carol.deviceId)).toEqual({
      signed_curve25519: 50,
    });
  });

  it("reports a request the transport gave up on and sends it again after the loop's backoff", async () => {
    const clock = new ManualClock();
    const dave = await register("dave", { retry: { maxAttempts: 1 }, loopClock: clock });
    server.homeserver.control.scriptFailure({
      method: "POST",
      path: "/_matrix/client/v3/keys/upload",
      status: 503,
    });
    const scheduled: number[] = [];
    dave.loop.events.on("retryScheduled", (e) => scheduled.push(e.delayMs));
    await dave.loop.run();
    expect(dave.failures).toHaveLength(1);
    expect(dave.failures[0]).toMatchObject({ name: "MatrixApiError", status: 503 });
    expect(scheduled).toHaveLength(1);

    const uploadsByDave = () => logged("POST", "/keys/upload").filter((e) => e.userId === dave.userId).length;
    const tried = uploadsByDave();
    await clock.advance(scheduled[0]! - 1);
    expect(uploadsByDave()).toBe(tried);
    const resent = new Promise((resolve) => dave.loop.events.once("requestSent", resolve));
    await clock.advance(1);
    expect(await resent).toMatchObject({ kind: "KeysUpload" });
    expect(uploadsByDave()).toBe(tried + 1);
    expect(await dave.machine.outgoingRequests()).toEqual([]);
    expect(server.homeserver.state.keys.oneTimeKeyCounts(dave.userId, dave.deviceId)).toEqual({
      signed_curve25519: 50,
    });
  });

  it("never replays a keys/claim whose response was lost", async () => {
    const erin = await register("erin", { retry: fastRetry });
    const frank = await register("frank", { retry: fastRetry });
    await Promise.all([erin.loop.run(), frank.loop.run()]);
    await erin.machine.updateTrackedUsers([new UserId(frank.userId)]);
    await erin.loop.run();
    const before = server.homeserver.state.keys.oneTimeKeyCounts(frank.userId, frank.deviceId)
      .signed_curve25519!;
    const claimsBefore = logged("POST", "/keys/claim").length;

    server.homeserver.control.scriptFailure({
      method: "POST",
      path: "/_matrix/client/v3/keys/claim",
      when: "after",
      drop: true,
    });
    await expect(claimMissingSessions(erin.machine, erin.http, [frank.userId])).rejects.toMatchObject({
      name: "NetworkError",
    });
    expect(logged("POST", "/keys/claim").length - claimsBefore).toBe(1);
    // The server did hand out one key; nothing else was burnt.
    expect(
      server.homeserver.state.keys.oneTimeKeyCounts(frank.userId, frank.deviceId).signed_curve25519,
    ).toBe(before - 1);

    // Asking again is a fresh, deliberate claim that succeeds.
    expect(await claimMissingSessions(erin.machine, erin.http, [frank.userId])).toBe(true);
    expect(logged("POST", "/keys/claim").length - claimsBefore).toBe(2);
  });
});
