import "fake-indexeddb/auto";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { initAsync } from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientInternals } from "../../src/client.js";
import type { E2eeClientEvents } from "../../src/client-options.js";
import { DEHYDRATED_DEVICE_PATH } from "../../src/dehydration/device/names.js";
import type { DrainTuning } from "../../src/dehydration/drain/drain-loop.js";
import { isDrainError } from "../../src/dehydration/drain/errors.js";
import { IndexedDbStateStore } from "../../src/state/indexeddb-state-store.js";
import { type ProfileName, type RunningMockServer, startMockServer } from "../../src/testing/index.js";
import {
  inClient,
  inThreadClient,
  inWorkerMode,
  itInThread,
  type TestClient,
} from "./support/client-mode.js";
import {
  type Alice,
  aliceWithDehydratedDevice,
  bobSharesRoomKeys,
  type ClientEvent,
  cursorRecordingFetch,
  decryptable,
  eventsRequests,
  newLogin,
  openClient,
  passwordLogin,
  payloadsOf,
  type RoomMessage,
  recordEvents,
  type SentEventsRequest,
  watchAlice,
  watchDehydrationKey,
} from "./support/dehydration-drain-fixtures.js";
import { LeakWatch } from "./support/foundation-fixtures.js";

/**
 * Draining end to end, per server profile, over a real socket with real crypto-wasm machines: Bob
 * shares room keys in many rooms while Alice is offline on every device, so the keys wait only in
 * her dehydrated device's inbox; a new login drains that inbox page by page and decrypts every
 * room message — also through injected faults, across an abort and a reload, and against servers
 * that repeat a cursor or never end.
 */

const ROOMS = 120;
/** Small pages (≈25 events) so even 120 events take several pages on servers that honour `limit`. */
const TARGET_PAGE_BYTES = 50_000;
const profiles: ProfileName[] = ["synapse-1.157", "synapse-1.156", "tuwunel", "msc"];
const EVENTS_PATTERN = `${DEHYDRATED_DEVICE_PATH}/{deviceId}/events`;

beforeAll(async () => {
  await initAsync();
});

/** Every client and secret of this file: logs, errors and events must not show a secret. */
const watch = new LeakWatch();

/** The drain's events on `client.events` (`dehydration.drain.*`), in order. */
function record(client: TestClient): ClientEvent[] {
  return recordEvents(client, (name) => name.startsWith("dehydration.drain."));
}

/** The client's drain, paced by `drain` (the client option every drain of it follows). */
const tuned = (drain: DrainTuning) => ({ dehydration: { drain } });

describe.each(profiles)("draining the dehydrated device on %s", (profile) => {
  let server: RunningMockServer;
  let alice: Alice;
  let messages: RoomMessage[];
  const clients: TestClient[] = [];
  let speaksGet: boolean;

  beforeAll(async () => {
    server = await startMockServer({ profile });
    speaksGet = server.homeserver.profile.dehydratedEventsGet;
    alice = await aliceWithDehydratedDevice(server, "alice", watch);
    watchAlice(watch, alice);
    messages = await bobSharesRoomKeys(server, alice.userId, ROOMS, "bob", watch);
    // Every room key is queued for the dehydrated device: that is the only place a new login finds it.
    expect(server.homeserver.state.toDevice.inbox(alice.userId, alice.dehydratedDeviceId)).toHaveLength(
      ROOMS,
    );
  }, 120_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  async function login(options: Parameters<typeof newLogin>[2] = {}) {
    const opened = await newLogin(server, alice, { watch, ...options });
    clients.push(opened.client);
    // A test's probe that no message decrypts yet makes the machine queue a room-key request per
    // session, to every device of Alice's — the dehydrated one included. Validation runs the
    // outgoing-request loop, which would send them into the very inbox these tests count.
    await inClient(opened.client, "setRoomKeyRequests", false);
    return opened;
  }

  /** What the variant this profile answers looks like in a list of sent requests. */
  const variantMethod = () => (speaksGet ? "GET" : "POST");

  itInThread("records the events requests through its own fetch (cursorRecordingFetch)")(
    "lets a new login drain every page, pipelined, and decrypt every room message",
    async () => {
      const sent: SentEventsRequest[] = [];
      const { client, secretStorageKey } = await login({
        fetch: cursorRecordingFetch(sent),
        ...tuned({ targetPageBytes: TARGET_PAGE_BYTES, sliceSize: 10 }),
      });
      expect(await decryptable(client, messages)).toBe(0);

      const seen = record(client);
      const answeredAtPage: number[] = [];
      client.events.on("dehydration.drain.page", () => {
        // Events requests the server has seen begin by the time this page's import has finished.
        answeredAtPage.push(
          eventsRequests(server, alice.dehydratedDeviceId).filter((e) => e.status !== 405).length,
        );
      });
      server.homeserver.control.clearRequestLog();
      const loop = monitorEventLoopDelay({ resolution: 1 });
      loop.enable();
      const result = await client.dehydration.drain({ secretStorageKey });
      loop.disable();

      expect(result).toMatchObject({
        outcome: "completed",
        totals: { events: ROOMS, roomKeys: ROOMS },
        run: { invalidEvents: 0 },
        resumedFrom: undefined,
      });
      if (result.outcome !== "completed") throw new Error("the drain did not complete");
      expect(await decryptable(client, messages)).toBe(ROOMS);

      const pages = payloadsOf(seen, "dehydration.drain.page").length;
      expect(pages).toBeGreaterThanOrEqual(2);
      expect(seen.map((e) => e.name)).toEqual([
        "dehydration.drain.found",
        "dehydration.drain.rehydrated",
        ...Array<string>(pages).fill("dehydration.drain.page"),
        "dehydration.drain.completed",
      ]);
      expect(seen[0]!.payload).toEqual({ deviceId: alice.dehydratedDeviceId, resumeFrom: undefined });

      // The variant: GET where the server has it; otherwise one refused GET, then POST throughout.
      const methods = sent.map((s) => s.method);
      if (speaksGet) expect(methods.every((m) => m === "GET")).toBe(true);
      else expect(methods).toEqual(["GET", ...Array<string>(methods.length - 1).fill("POST")]);
      const cursors = sent.filter((s) => s.method === variantMethod()).map((s) => s.cursor);
      expect(new Set(cursors).size).toBe(cursors.length);

      // Pipelining: when page k's keys were stored, the request for page k+1 had already reached the
      // server (the last page has no successor).
      for (let k = 1; k < pages; k++) expect(answeredAtPage[k - 1]).toBeGreaterThanOrEqual(k + 1);

      const longestBlockMs = loop.max / 1e6;
      console.log(
        `[${profile}] drained ${result.totals.events} events in ${pages} pages in ${result.durationMs} ms; ` +
          `longest crypto slice ${result.longestSliceMs} ms; longest event-loop block ${longestBlockMs.toFixed(1)} ms`,
      );
      expect(longestBlockMs).toBeGreaterThan(0);
    },
  );

  it("drains every room key through injected 5xx, 429 and dropped connections", async () => {
    const { client, secretStorageKey } = await login({
      retry: { baseDelayMs: 2, maxDelayMs: 20, maxAttempts: 10 },
      ...tuned({ targetPageBytes: TARGET_PAGE_BYTES }),
    });
    const retried: E2eeClientEvents["http.requestRetried"][] = [];
    client.events.on("http.requestRetried", (e) => retried.push(e));
    const control = server.homeserver.control;
    control.clearRequestLog();
    control.scriptFailure({ path: EVENTS_PATTERN, status: 503 });
    control.scriptFailure({ path: EVENTS_PATTERN, status: 429, retryAfterMs: 5 });
    control.scriptFailure({ path: EVENTS_PATTERN, drop: true, when: "after" });
    // Random faults on every later page as well (from the moment the device is open).
    client.events.on("dehydration.drain.rehydrated", () => {
      control.setFaults({
        serverErrorRate: 0.1,
        rateLimitRate: 0.05,
        dropRate: 0.1,
        retryAfterMs: 5,
        seed: 6,
      });
    });
    try {
      const result = await client.dehydration.drain({ secretStorageKey });
      expect(result).toMatchObject({ outcome: "completed", totals: { events: ROOMS } });
    } finally {
      control.setFaults({ serverErrorRate: 0, rateLimitRate: 0, dropRate: 0 });
      control.clearScriptedFailures();
    }
    expect(await decryptable(client, messages)).toBe(ROOMS);

    const log = eventsRequests(server, alice.dehydratedDeviceId);
    expect(log.some((e) => e.status === 503)).toBe(true);
    expect(log.some((e) => e.status === 429)).toBe(true);
    expect(log.some((e) => e.dropped)).toBe(true);
    expect(retried.filter((r) => r.path.endsWith("/events")).length).toBeGreaterThanOrEqual(3);
  });

  itInThread(
    "gives both clients a stateStore and a fetch of its own, and reads the drain checkpoint (clientInternals)",
  )(
    "resumes after an abort half-way in a new SDK instance on the same IndexedDB stores, fetching no stored page again",
    async () => {
      const session = await passwordLogin(server, alice.userId);
      // fake-indexeddb stands in for a browser's IndexedDB: both stores outlive the SDK instance.
      const cryptoStore = { name: `drain-crypto-${profile}`, passphrase: "crypto store passphrase" };
      const stateStoreName = `drain-state-${profile}`;
      const sentBefore: SentEventsRequest[] = [];
      const first = await newLogin(
        server,
        alice,
        {
          watch,
          cryptoStore,
          stateStore: await IndexedDbStateStore.open(stateStoreName, { durability: "durable" }),
          fetch: cursorRecordingFetch(sentBefore),
          // With `cryptoStore`, checkpoints are durable: the crypto store is.
          ...tuned({ targetPageBytes: TARGET_PAGE_BYTES }),
        },
        session,
      );
      const abort = new AbortController();
      let storedPages = 0;
      first.client.events.on("dehydration.drain.page", (page) => {
        storedPages = page.page;
        if (page.totals.events >= ROOMS / 3) abort.abort(new Error("the tab was closed"));
      });
      const failure = await first.client.dehydration
        .drain({ secretStorageKey: first.secretStorageKey, signal: abort.signal })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      watch.errors.push(failure);
      expect(isDrainError(failure) && failure.code).toBe("aborted");
      // What the aborted drain left behind; the checkpoint store is not on the face.
      const checkpoint = await clientInternals(inThreadClient(first.client)).drainer.checkpoints.load();
      expect(checkpoint).toMatchObject({
        deviceId: alice.dehydratedDeviceId,
        complete: false,
        position: { pages: storedPages },
      });
      expect(checkpoint!.position.events).toBeLessThan(ROOMS);
      expect(checkpoint!.position.cursor).toBeDefined();
      const storedCursors = sentBefore
        .filter((s) => s.method === variantMethod())
        .slice(0, storedPages)
        .map((s) => s.cursor);
      await first.client.close();

      // A reload: a new SDK instance for the same device on the same stores, no recovery key this
      // time (the dehydration key is cached in the crypto store).
      const sentAfter: SentEventsRequest[] = [];
      const second = await openClient(server, session, {
        watch,
        cryptoStore,
        stateStore: await IndexedDbStateStore.open(stateStoreName, { durability: "durable" }),
        fetch: cursorRecordingFetch(sentAfter),
        ...tuned({ targetPageBytes: TARGET_PAGE_BYTES }),
      });
      clients.push(second);
      const seen = record(second);
      const result = await second.dehydration.drain();

      expect(seen[0]).toEqual({
        name: "dehydration.drain.found",
        payload: { deviceId: alice.dehydratedDeviceId, resumeFrom: checkpoint!.position.cursor },
      });
      expect(result).toMatchObject({
        outcome: "completed",
        resumedFrom: checkpoint!.position.cursor,
        totals: { events: ROOMS },
        run: { events: ROOMS - checkpoint!.position.events },
      });
      // The remembered variant is used at once (no GET probe on a POST-only server)…
      expect(sentAfter.every((s) => s.method === variantMethod())).toBe(true);
      // …starting at the checkpoint, and no page whose keys were stored is fetched again.
      expect(sentAfter[0]!.cursor).toBe(checkpoint!.position.cursor);
      for (const cursor of storedCursors) expect(sentAfter.map((s) => s.cursor)).not.toContain(cursor);
      // Keys from before the abort (in the IndexedDB crypto store) and after it: every message.
      expect(await decryptable(second, messages)).toBe(ROOMS);
    },
  );

  it("is truncated, and the device kept, when the server repeats a cursor", async () => {
    const { client, secretStorageKey } = await login(tuned({ targetPageBytes: TARGET_PAGE_BYTES }));
    const seen = record(client);
    const control = server.homeserver.control;
    control.setDehydratedEventsFault({ kind: "repeat-cursor", userId: alice.userId, afterPages: 1 });
    control.clearRequestLog();
    try {
      const result = await client.dehydration.drain({ secretStorageKey });
      expect(result).toMatchObject({ outcome: "truncated", reason: "repeated_cursor" });
    } finally {
      control.clearDehydratedEventsFault();
    }
    expect(payloadsOf(seen, "dehydration.drain.truncated")).toHaveLength(1);
    expect(seen.some((e) => e.name === "dehydration.drain.completed")).toBe(false);
    expect(control.dehydratedDevice(alice.userId)?.deviceId).toBe(alice.dehydratedDeviceId);
    expect(
      control.requestLog().filter((e) => e.path === DEHYDRATED_DEVICE_PATH && e.method !== "GET"),
    ).toEqual([]);
    // Two pages answered (the second repeated its cursor); no third request.
    expect(eventsRequests(server, alice.dehydratedDeviceId).filter((e) => e.status === 200)).toHaveLength(2);
  });

  it("is truncated at the event cap, and the device kept, when the server never ends", async () => {
    const { client, secretStorageKey } = await login(tuned({ targetPageBytes: TARGET_PAGE_BYTES }));
    const control = server.homeserver.control;
    control.setDehydratedEventsFault({ kind: "never-ends", userId: alice.userId, eventsPerPage: 40 });
    try {
      const result = await client.dehydration.drain({ secretStorageKey, limits: { maxEvents: 400 } });
      expect(result).toMatchObject({ outcome: "truncated", reason: "event_cap", totals: { events: 400 } });
    } finally {
      control.clearDehydratedEventsFault();
    }
    expect(control.dehydratedDevice(alice.userId)?.deviceId).toBe(alice.dehydratedDeviceId);
  });

  it("is truncated when a GET server sends empty pages forever; a POST server's empty page is its end", async () => {
    const { client, secretStorageKey } = await login(tuned({ targetPageBytes: TARGET_PAGE_BYTES }));
    const control = server.homeserver.control;
    control.setDehydratedEventsFault({ kind: "never-ends", userId: alice.userId, afterPages: 1 });
    try {
      const result = await client.dehydration.drain({ secretStorageKey });
      if (speaksGet) expect(result).toMatchObject({ outcome: "truncated", reason: "empty_pages" });
      // MSC3814's POST form ends at an empty page, whatever `next_batch` it carries.
      else expect(result).toMatchObject({ outcome: "completed", endReason: "empty_page" });
    } finally {
      control.clearDehydratedEventsFault();
    }
    expect(control.dehydratedDevice(alice.userId)?.deviceId).toBe(alice.dehydratedDeviceId);
  });

  it("leaks no key, recovery key or access token into logs, errors or events", async () => {
    for (const client of clients) await watchDehydrationKey(watch, client);
    expect(watch.events.some((e) => e.name === "dehydration.drain.page")).toBe(true);
    // The error it checks is the aborted drain's, of a test that runs in-thread only.
    if (!inWorkerMode) expect(watch.errors.length).toBeGreaterThan(0);
    watch.expectNoLeaks();
  });
});
