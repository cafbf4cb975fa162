import { DeviceId, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterEach, beforeEach, describe, expect } from "vitest";
import { z } from "zod";
import { claimMissingSessions } from "../../src/crypto/claim-sessions.js";
import { createMatrixHttp, type MatrixHttpClient } from "../../src/http/matrix-http.js";
import { createE2eeClient, type E2eeClient, MalformedResponseError } from "../../src/index.js";
import type { ReceivedToDeviceEvent } from "../../src/sync/crypto-sync.js";
import type { ClassicSyncResponseBody } from "../../src/sync/sync.js";
import { createMockHomeserver, type MockHomeserver } from "../../src/testing/index.js";
import { itInThread } from "./support/client-mode.js";

/**
 * Classic `/sync` through the encryption loop, against the mock's in-process server: the app gets
 * every whole response from `start({ mode: "classic", onResponse })`, its to-device events already
 * decrypted, and `next_batch` — which acknowledges (deletes) the to-device messages on the server —
 * is saved only once `onResponse` resolved, so an app that fails on a response gets it again.
 * `receiveClassic` serves an app that runs its own `/sync` loop, and never next to `start()`.
 */

interface Device {
  userId: string;
  deviceId: string;
  accessToken: string;
}

const CLASSIC_SYNC = "/_matrix/client/v3/sync";
const created = z.looseObject({ room_id: z.string() });
const syncBody = z.looseObject({ next_batch: z.string() });

let hs: MockHomeserver;
/** Why these run in-thread only: the clients talk to an in-process mock through its `fetch`. */
const IN_PROCESS = "the clients use the in-process mock's fetch (hs.fetch), which cannot cross to a worker";

let alice: Device;
let bob: Device;
let aliceClient: E2eeClient;
let bobClient: E2eeClient;
let bobHttp: MatrixHttpClient;
let releaseHeld: (() => void) | undefined;

function device(localpart: string): Device {
  const account = hs.control.createUser(localpart);
  if (account === undefined) throw new Error(`${localpart} exists`);
  return account;
}

function open(who: Device): Promise<E2eeClient> {
  return createE2eeClient({
    baseUrl: hs.baseUrl,
    fetch: hs.fetch,
    userId: who.userId,
    deviceId: who.deviceId,
    accessToken: who.accessToken,
    // The shortest backoff after a failed step, so a retried response comes back quickly.
    random: () => 0,
  });
}

async function appFetch(who: Device, path: string, init: RequestInit = {}): Promise<unknown> {
  const res = await hs.fetch(`${hs.baseUrl}${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${who.accessToken}`, "Content-Type": "application/json" },
  });
  const json: unknown = await res.json();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Bob Olm-encrypts `content` for Alice's device and sends it, as any app would (claim, encrypt, send). */
async function bobSendsEncrypted(type: string, content: Record<string, unknown>): Promise<void> {
  await bobClient.olmMachine.updateTrackedUsers([new UserId(alice.userId)]);
  await bobClient.processOutgoingRequests();
  await claimMissingSessions(bobClient.olmMachine, bobHttp, [alice.userId]);
  const target = await bobClient.olmMachine.getDevice(new UserId(alice.userId), new DeviceId(alice.deviceId));
  if (target === undefined) throw new Error("Bob does not know Alice's device");
  const payload: unknown = JSON.parse(await target.encryptToDeviceEvent(type, content));
  target.free();
  await bobHttp.request({
    method: "PUT",
    path: `/_matrix/client/v3/sendToDevice/m.room.encrypted/${crypto.randomUUID()}`,
    body: { messages: { [alice.userId]: { [alice.deviceId]: payload } } },
    schema: z.looseObject({}),
  });
}

/** The Olm-encrypted to-device events a response carries from Bob. */
function bobsEncrypted(response: ClassicSyncResponseBody): unknown[] {
  const events = (response.to_device as { events?: { type?: string; sender?: string }[] } | undefined)
    ?.events;
  return (events ?? []).filter((e) => e.type === "m.room.encrypted" && e.sender === bob.userId);
}

function isBobsPing(e: ReceivedToDeviceEvent): boolean {
  return (
    e.kind === "decrypted" &&
    e.event.type === "org.example.ping" &&
    e.sender?.userId === bob.userId &&
    e.sender.deviceId === bob.deviceId
  );
}

/** The `since` of every classic `/sync` Alice's device sent, in order (`undefined`: none). */
function alicesSinces(): (string | undefined)[] {
  return hs.control
    .requestLog()
    .filter((e) => e.userId === alice.userId && e.path === CLASSIC_SYNC)
    .map((e) => new URLSearchParams(e.query).get("since") ?? undefined);
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

beforeEach(async () => {
  hs = createMockHomeserver();
  alice = device("alice");
  bob = device("bob");
  aliceClient = await open(alice);
  bobClient = await open(bob);
  bobHttp = createMatrixHttp({ baseUrl: hs.baseUrl, fetch: hs.fetch, accessToken: bob.accessToken });
  // Both devices publish their keys first, so that Bob can claim one of Alice's one-time keys.
  await aliceClient.processOutgoingRequests();
  await bobClient.processOutgoingRequests();
});

afterEach(async () => {
  // A test that failed while its handler held a response lets it go: the loop, and so close(),
  // waits for the app's handler.
  releaseHeld?.();
  releaseHeld = undefined;
  await aliceClient.close();
  await bobClient.close();
});

describe("client.sync.start({ mode: 'classic' })", () => {
  itInThread(IN_PROCESS)(
    "hands every whole response to onResponse after decrypting its to-device events, and saves next_batch only once onResponse resolved",
    async () => {
      const { room_id: roomId } = created.parse(
        await appFetch(alice, "/_matrix/client/v3/createRoom", { method: "POST", body: "{}" }),
      );
      const received: ReceivedToDeviceEvent[] = [];
      const modes = new Set<string>();
      aliceClient.events.on("sync.toDevice", ({ mode, events }) => {
        modes.add(mode);
        received.push(...events);
      });
      const responses: ClassicSyncResponseBody[] = [];
      const held = new Promise<void>((resolve) => {
        releaseHeld = resolve;
      });
      let seen: { decryptedAlready: boolean; savedSince: string | undefined } | undefined;
      const onResponse = async (response: ClassicSyncResponseBody) => {
        responses.push(response);
        if (bobsEncrypted(response).length === 0) return;
        seen = {
          decryptedAlready: received.some(isBobsPing),
          savedSince: (await aliceClient.sync.status()).positions.classicSince,
        };
        // The app is slow with this response: nothing may be acknowledged meanwhile.
        await held;
      };

      await aliceClient.sync.start({ mode: "classic", onResponse, pollTimeoutMs: 5_000 });
      expect(await aliceClient.sync.status()).toMatchObject({ state: "running", mode: "classic" });
      await waitFor("the initial sync reached the app", () => responses.length > 0);
      // The whole response, rooms and account data included, not just the parts the SDK reads.
      const initial = responses[0]!;
      expect(initial).toMatchObject({ rooms: { join: { [roomId]: { timeline: expect.anything() } } } });
      expect(JSON.stringify(initial.rooms)).toContain("m.room.create");
      expect(initial.account_data).toBeDefined();
      await waitFor(
        "the initial next_batch is saved",
        async () => (await aliceClient.sync.status()).positions.classicSince !== undefined,
      );

      await bobSendsEncrypted("org.example.ping", { n: 1 });
      await waitFor("the app holds the response with Bob's message", () => seen !== undefined);
      const pingResponse = responses.find((r) => bobsEncrypted(r).length > 0)!;
      expect(seen?.decryptedAlready).toBe(true);
      expect(seen?.savedSince).not.toBe(pingResponse.next_batch);
      expect(received.find(isBobsPing)?.event).toMatchObject({ sender: bob.userId, content: { n: 1 } });

      // While the app works on it, the position stays, no request moves past it, and the server keeps
      // the message.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect((await aliceClient.sync.status()).positions.classicSince).toBe(seen?.savedSince);
      expect(alicesSinces()).not.toContain(pingResponse.next_batch);
      expect(hs.control.toDeviceInbox(alice.userId, alice.deviceId).events).toHaveLength(1);

      releaseHeld?.();
      await waitFor(
        "next_batch is saved once onResponse resolved",
        async () => (await aliceClient.sync.status()).positions.classicSince === pingResponse.next_batch,
      );
      await waitFor("the next request acknowledges the message", () =>
        alicesSinces().includes(pingResponse.next_batch),
      );
      expect(hs.control.toDeviceInbox(alice.userId, alice.deviceId).events).toHaveLength(0);
      // Each response reached the app once.
      expect(new Set(responses.map((r) => r.next_batch)).size).toBe(responses.length);
      expect([...modes]).toEqual(["classic"]);
    },
  );

  itInThread(IN_PROCESS)(
    "delivers a response again when onResponse throws: nothing of it was acknowledged",
    async () => {
      const errors: { mode: string; stage: string }[] = [];
      aliceClient.events.on("sync.error", ({ mode, stage }) => errors.push({ mode, stage }));
      const kinds: ReceivedToDeviceEvent["kind"][][] = [];
      aliceClient.events.on("sync.toDevice", ({ events }) => kinds.push(events.map((e) => e.kind)));
      const deliveries: { response: ClassicSyncResponseBody; savedSince: string | undefined }[] = [];
      const onResponse = async (response: ClassicSyncResponseBody) => {
        if (bobsEncrypted(response).length === 0) return;
        deliveries.push({ response, savedSince: (await aliceClient.sync.status()).positions.classicSince });
        if (deliveries.length === 1) throw new Error("the app failed on this response");
      };

      await aliceClient.sync.start({ mode: "classic", onResponse, pollTimeoutMs: 5_000 });
      await waitFor(
        "the initial next_batch is saved",
        async () => (await aliceClient.sync.status()).positions.classicSince !== undefined,
      );
      const before = (await aliceClient.sync.status()).positions.classicSince;
      await bobSendsEncrypted("org.example.ping", { n: 1 });
      await waitFor("the response came a second time", () => deliveries.length === 2);

      const [first, second] = deliveries;
      // The same message, from the same position: the server was never told to drop it.
      expect(bobsEncrypted(second!.response)).toEqual(bobsEncrypted(first!.response));
      expect(first?.savedSince).toBe(before);
      expect(second?.savedSince).toBe(before);
      expect(alicesSinces().filter((since) => since === before).length).toBeGreaterThanOrEqual(2);
      expect(errors).toContainEqual({ mode: "classic", stage: "process" });

      await waitFor(
        "the second delivery's next_batch is saved",
        async () => (await aliceClient.sync.status()).positions.classicSince === second?.response.next_batch,
      );
      await waitFor("the message is acknowledged", () =>
        alicesSinces().includes(second!.response.next_batch),
      );
      expect(hs.control.toDeviceInbox(alice.userId, alice.deviceId).events).toHaveLength(0);
      // The crypto layer saw it both times: the first pass decrypted it (the app had it from
      // `sync.toDevice` before its handler failed); an Olm message cannot be decrypted twice.
      expect(kinds).toEqual([["decrypted"], ["unable_to_decrypt"]]);
    },
  );
});

describe("client.sync.receiveClassic", () => {
  itInThread(IN_PROCESS)(
    "processes responses the app fetched itself, and refuses while start() runs",
    async () => {
      const emitted: string[] = [];
      aliceClient.events.onAny((name) => {
        if (name.startsWith("sync.")) emitted.push(name);
      });
      await bobSendsEncrypted("org.example.ping", { n: 1 });

      // The app's own loop: it fetches, hands the whole response over, then syncs on from next_batch.
      const first = syncBody.parse(await appFetch(alice, `${CLASSIC_SYNC}?timeout=0`));
      const events = await aliceClient.sync.receiveClassic(first);
      expect(events.filter(isBobsPing).map((e) => e.event)).toEqual([
        expect.objectContaining({ type: "org.example.ping", content: { n: 1 } }),
      ]);
      expect(await aliceClient.sync.status()).toMatchObject({
        state: "running",
        mode: "classic",
        positions: { classicSince: first.next_batch },
      });
      expect(hs.control.toDeviceInbox(alice.userId, alice.deviceId).events).toHaveLength(1);
      const next = syncBody.parse(
        await appFetch(alice, `${CLASSIC_SYNC}?timeout=0&since=${encodeURIComponent(first.next_batch)}`),
      );
      expect(hs.control.toDeviceInbox(alice.userId, alice.deviceId).events).toHaveLength(0);
      expect(await aliceClient.sync.receiveClassic(next)).toEqual([]);
      expect((await aliceClient.sync.status()).positions.classicSince).toBe(next.next_batch);
      expect(emitted).toEqual(["sync.running", "sync.toDevice"]);

      // A malformed response is refused whole: nothing moves. The error names the request it answers.
      const malformed = await aliceClient.sync
        .receiveClassic({ to_device: { events: [] } })
        .catch((e: unknown) => e);
      expect(malformed).toBeInstanceOf(MalformedResponseError);
      expect(malformed).toMatchObject({
        method: "GET",
        path: CLASSIC_SYNC,
        issues: [{ path: "next_batch" }],
      });
      expect((await aliceClient.sync.status()).positions.classicSince).toBe(next.next_batch);

      // The app's loop holds the device's connection: the SDK's loop may not start beside it.
      await expect(aliceClient.sync.start({ mode: "classic" })).rejects.toMatchObject({
        code: "sync_already_running",
      });
      await aliceClient.sync.stop();
      expect((await aliceClient.sync.status()).state).toBe("stopped");

      // And the other way round, for both loops of the SDK.
      const fake = { next_batch: "s999_999_999_999" };
      for (const mode of ["classic", "sliding"] as const) {
        await aliceClient.sync.start({ mode, pollTimeoutMs: 5_000 });
        await expect(aliceClient.sync.receiveClassic(fake)).rejects.toMatchObject({
          code: "sync_already_running",
        });
        expect((await aliceClient.sync.status()).positions.classicSince).not.toBe(fake.next_batch);
        await aliceClient.sync.stop();
      }
    },
  );
});
