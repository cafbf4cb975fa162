import { DeviceId, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { claimMissingSessions } from "../../src/crypto/claim-sessions.js";
import { createMatrixHttp } from "../../src/http/matrix-http.js";
import { createE2eeClient, type E2eeClient } from "../../src/index.js";
import {
  type RequestLogEntry,
  type RunningMockServer,
  SLIDING_SYNC_PATH,
  startMockServer,
} from "../../src/testing/index.js";
import type { SeenSyncEvent, SyncTabsScenarios, TabSession } from "./pages/sync-tabs.js";
import { useBrowserSuite } from "./support/browser-suite.js";
import type { ScenarioPage } from "./support/scenario-page.js";

/**
 * One device, two tabs of one origin in one Chromium: both tabs' clients call `client.sync.start()`,
 * and only one may read the device's to-device stream (the server acknowledges per device, so two
 * readers delete each other's messages). The second tab waits on the Web Lock, sends nothing, and
 * takes over — from the first tab's saved positions — once that tab closes or its client does.
 * Both tabs talk to one mock homeserver in this Node process, over HTTP with CORS, whose request
 * log shows which tab sent each sliding-sync request.
 */

const browser = useBrowserSuite();
const POLL_MS = 300;

let server: RunningMockServer;
let users = 0;
const senders: E2eeClient[] = [];

beforeAll(async () => {
  server = await startMockServer({ host: "127.0.0.1", port: 0 });
});

afterAll(async () => {
  await Promise.all(senders.map((c) => c.close()));
  await server?.close();
});

type Tab = ScenarioPage<SyncTabsScenarios>;

interface Setup {
  a: Tab;
  b: Tab;
  session: Omit<TabSession, "tab">;
  sendPing: (n: number) => Promise<void>;
}

/** A fresh user with one device, a sender, and two tabs each holding a client for that device. */
async function twoTabs(): Promise<Setup> {
  users += 1;
  const account = server.homeserver.control.createUser(`tabs${users}`);
  const sender = server.homeserver.control.createUser(`sender${users}`);
  if (account === undefined || sender === undefined) throw new Error("the users exist");
  const session = {
    baseUrl: server.url,
    userId: account.userId,
    deviceId: account.deviceId,
    accessToken: account.accessToken,
    storeName: `sync-tabs-${users}`,
  };
  // The sender is a device of its own in this Node process: it Olm-encrypts each message for the
  // tabs' device, so the tab that takes over must decrypt on the session the other tab set up.
  const senderClient = await createE2eeClient({
    baseUrl: server.url,
    userId: sender.userId,
    deviceId: sender.deviceId,
    accessToken: sender.accessToken,
  });
  senders.push(senderClient);
  const senderHttp = createMatrixHttp({ baseUrl: server.url, accessToken: sender.accessToken });
  await senderClient.processOutgoingRequests();
  const sendPing = async (n: number) => {
    const machine = senderClient.olmMachine;
    await machine.updateTrackedUsers([new UserId(account.userId)]);
    await senderClient.processOutgoingRequests();
    await claimMissingSessions(machine, senderHttp, [account.userId]);
    const target = await machine.getDevice(new UserId(account.userId), new DeviceId(account.deviceId));
    if (target === undefined) throw new Error("the sender does not know the tabs' device");
    const payload: unknown = JSON.parse(await target.encryptToDeviceEvent("org.example.ping", { n }));
    target.free();
    await senderHttp.request({
      method: "PUT",
      path: `/_matrix/client/v3/sendToDevice/m.room.encrypted/ping-${n}`,
      body: { messages: { [account.userId]: { [account.deviceId]: payload } } },
      schema: z.looseObject({}),
    });
  };
  const a = await browser.openPage<SyncTabsScenarios>("sync-tabs");
  const b = await browser.openPage<SyncTabsScenarios>("sync-tabs");
  expect(await a.call("hasWebLocks")).toBe(true);
  return { a, b, session, sendPing };
}

/** This device's sliding-sync requests in the mock's log, with the tab that sent each. */
function slidingRequests(userId: string): { tab: string | null; entry: RequestLogEntry }[] {
  return server.homeserver.control
    .requestLog()
    .filter((e) => e.method === "POST" && e.path === SLIDING_SYNC_PATH && e.userId === userId)
    .map((entry) => ({ tab: new URLSearchParams(entry.query).get("tab"), entry }));
}

function query(entry: RequestLogEntry, name: string): string | null {
  return new URLSearchParams(entry.query).get(name);
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The messages a tab's loop decrypted; anything it could not decrypt shows as such. */
function pings(events: readonly SeenSyncEvent[]): unknown[] {
  return events.flatMap((e) =>
    (e.toDevice ?? []).map((t) => (t.kind === "decrypted" && t.type === "org.example.ping" ? t.content : t)),
  );
}

/**
 * Tab A runs the loop and receives a message; tab B's start() resolves waiting for the lock, and
 * while it waits every sliding-sync request in the log is A's.
 */
async function aRunsBWaits({ a, b, session, sendPing }: Setup) {
  await a.call("open", { ...session, tab: "A" });
  expect(await a.call("start", POLL_MS)).toMatchObject({ state: "running", mode: "sliding" });
  // A publishes the device's keys from its first response; B opens the store after that, as a tab
  // opened later would.
  await waitFor("A uploaded the device's keys", () =>
    server.homeserver.control
      .requestLog()
      .some(
        (e) => e.userId === session.userId && e.path === "/_matrix/client/v3/keys/upload" && e.status === 200,
      ),
  );
  await sendPing(1);
  await waitFor("A received the first message", async () => pings(await a.call("events")).length === 1);

  await b.call("open", { ...session, tab: "B" });
  expect(await b.call("start", POLL_MS)).toMatchObject({ state: "waiting_for_lock", mode: "sliding" });
  const bEvents = await b.call("events");
  expect(bEvents.map((e) => e.name)).toEqual(["sync.waitingForLock"]);
  expect(bEvents[0]).toMatchObject({ mode: "sliding", lockName: expect.stringContaining(session.deviceId) });

  // A goes on long-polling (several requests of POLL_MS each) while B sends nothing.
  const before = slidingRequests(session.userId).length;
  await waitFor("A sent more requests", () => slidingRequests(session.userId).length >= before + 3);
  expect(await b.call("slidingRequests")).toBe(0);
  expect(await b.call("status")).toMatchObject({ state: "waiting_for_lock" });
  const log = slidingRequests(session.userId);
  expect(log.map((r) => r.tab)).toEqual(log.map(() => "A"));
  // A's own count and the log agree (a request is counted before it reaches the server).
  await waitFor(
    "the log holds every request A sent",
    async () => slidingRequests(session.userId).length === (await a.call("slidingRequests")),
  );
  expect(pings(await a.call("events"))).toEqual([{ n: 1 }]);
}

/** B takes over from A's saved positions, and from then on only B reads the device's messages. */
async function bTakesOver({ b, session, sendPing }: Setup) {
  await waitFor("B runs", async () => (await b.call("status")).state === "running");
  expect((await b.call("events")).map((e) => e.name).slice(-2)).toEqual([
    "sync.waitingForLock",
    "sync.running",
  ]);
  await waitFor("B's first request was answered", () =>
    slidingRequests(session.userId).some((r) => r.tab === "B" && r.entry.status !== null),
  );

  const log = slidingRequests(session.userId);
  const firstOfB = log.findIndex((r) => r.tab === "B");
  expect(firstOfB).toBeGreaterThan(0);
  expect(log.slice(0, firstOfB).map((r) => r.tab)).toEqual(Array(firstOfB).fill("A"));
  expect(log.slice(firstOfB).map((r) => r.tab)).toEqual(log.slice(firstOfB).map(() => "B"));
  // B goes on from A's connection and to-device cursor (shared through IndexedDB), not from scratch.
  const first = log[firstOfB]!.entry;
  expect(query(first, "pos")).not.toBeNull();
  expect(first.status).toBe(200);
  expect(first.body).toMatchObject({ extensions: { to_device: { since: expect.any(String) } } });

  await sendPing(2);
  await waitFor("B received the second message", async () => pings(await b.call("events")).length > 0);
  // The message A already had is not delivered again; the new one reaches B.
  expect(pings(await b.call("events"))).toEqual([{ n: 2 }]);
  await waitFor(
    "the device's inbox is acknowledged",
    () => server.homeserver.control.toDeviceInbox(session.userId, session.deviceId).events.length === 0,
  );
}

describe("one device's encryption sync in two tabs", () => {
  it("runs in one tab; the other waits on the Web Lock and takes over when the first tab closes", async () => {
    const setup = await twoTabs();
    await aRunsBWaits(setup);
    // Waiting can be given up and taken up again, without ever sending a request.
    expect(await setup.b.call("stop")).toMatchObject({ state: "stopped" });
    expect(await setup.b.call("start", POLL_MS)).toMatchObject({ state: "waiting_for_lock" });
    expect((await setup.b.call("events")).map((e) => e.name)).toEqual([
      "sync.waitingForLock",
      "sync.stopped",
      "sync.waitingForLock",
    ]);
    expect(await setup.b.call("slidingRequests")).toBe(0);
    await setup.a.close();
    await bTakesOver(setup);
    await setup.b.call("closeClient");
    await setup.b.close();
    expect([...setup.a.problems, ...setup.b.problems]).toEqual([]);
  });

  it("hands over when the first tab's client closes, and hands back when the second one stops", async () => {
    const setup = await twoTabs();
    const { a, b, session } = setup;
    await aRunsBWaits(setup);
    await a.call("closeClient");
    // Every request A's client sent is in the log, and none came after its close.
    const aRequests = await a.call("slidingRequests");
    await bTakesOver(setup);
    expect(slidingRequests(session.userId).filter((r) => r.tab === "A")).toHaveLength(aRequests);

    // The same tab opens its client again: now it is the one that waits.
    await a.call("open", { ...session, tab: "A" });
    expect(await a.call("start", POLL_MS)).toMatchObject({ state: "waiting_for_lock" });
    const bRequests = slidingRequests(session.userId).length;
    await waitFor("B sent more requests", () => slidingRequests(session.userId).length >= bRequests + 2);
    expect(await a.call("slidingRequests")).toBe(0);

    expect(await b.call("stop")).toMatchObject({ state: "stopped" });
    await waitFor("A runs again", async () => (await a.call("status")).state === "running");
    // A request is counted in the page before it reaches the server: wait for the log to show it.
    await waitFor("A's first request again was answered", () => {
      const log = slidingRequests(session.userId);
      return log[log.findLastIndex((r) => r.tab === "B") + 1]?.entry.status != null;
    });
    const log = slidingRequests(session.userId);
    const lastOfB = log.findLastIndex((r) => r.tab === "B");
    const resumed = log[lastOfB + 1]!.entry;
    expect(log.slice(lastOfB + 1).map((r) => r.tab)).toEqual(log.slice(lastOfB + 1).map(() => "A"));
    expect(query(resumed, "pos")).not.toBeNull();
    expect(resumed.status).toBe(200);
    await setup.sendPing(3);
    await waitFor("A received the third message", async () => pings(await a.call("events")).length > 0);
    expect(pings(await a.call("events"))).toEqual([{ n: 3 }]);

    await a.call("closeClient");
    await b.call("closeClient");
    await a.close();
    await b.close();
    expect([...a.problems, ...b.problems]).toEqual([]);
  });
});
