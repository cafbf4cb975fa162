import { initAsync } from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { E2eeClientEvents } from "../../src/client-options.js";
import { DEHYDRATED_DEVICE_PATH, DEHYDRATION_KEY_SECRET_NAMES } from "../../src/dehydration/device/names.js";
import type { SecretStorageKey } from "../../src/secret-storage/secret-storage.js";
import { type ProfileName, type RunningMockServer, startMockServer } from "../../src/testing/index.js";
import { inClient, type TestClient, TestClock } from "./support/client-mode.js";
import {
  type Alice,
  bobSharesRoomKeys,
  decryptable,
  newLogin,
  openClient,
  PASSWORD,
  watchDehydrationKey,
} from "./support/dehydration-drain-fixtures.js";
import { LeakWatch } from "./support/foundation-fixtures.js";

/**
 * Replacement and rotation end to end through `client.dehydration` and `client.events`, on a
 * `ManualClock` (the client's `clock`), over a real socket with real crypto-wasm machines: the
 * rotation uploads exactly when due and drains first, does nothing on a restart before then, backs
 * off when another client rotated, lets a new login drain the waiting device before replacing it,
 * and stops cleanly. The tests follow one timeline on the clock, in order.
 */

const HOUR = 60 * 60 * 1000;
const profiles: ProfileName[] = ["synapse-1.157", "synapse-1.156", "tuwunel", "msc"];

beforeAll(async () => {
  await initAsync();
});

/** Every client and secret of this file: logs, errors and events must not show a secret. */
const watch = new LeakWatch();

describe.each(profiles)("rotating the dehydrated device on %s", (profile) => {
  let server: RunningMockServer;
  let aliceId: string;
  let recoveryKey: string;
  let ssKey: SecretStorageKey;
  let alice: TestClient;
  const clock = new TestClock();
  const clients: TestClient[] = [];

  beforeAll(async () => {
    server = await startMockServer({ profile });
    const created = server.homeserver.control.createUser("alice", { password: PASSWORD })!;
    aliceId = created.userId;
    // Alice's rotation runs on the test's clock, with the key her app unlocked at login.
    alice = await openClient(server, created, { watch, clock, getSecretStorageKey: async () => ssKey });
    clients.push(alice);
    const boot = await alice.crossSigning.bootstrap({ createSecretStorageKey: true });
    recoveryKey = boot.recoveryKey!;
    ssKey = boot.secretStorageKey!;
    watch.secret(recoveryKey);
    watch.secretBytes(ssKey.key);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  function next<K extends keyof E2eeClientEvents>(client: TestClient, name: K): Promise<E2eeClientEvents[K]> {
    return new Promise((resolve) => client.events.once(name, resolve));
  }

  const record = async (client: TestClient) => (await client.dehydration.status()).rotation.record;

  const log = () => server.homeserver.control.requestLog();
  const puts = () => log().filter((e) => e.method === "PUT" && e.path === DEHYDRATED_DEVICE_PATH);
  const eventsCalls = () => log().filter((e) => e.path.startsWith(`${DEHYDRATED_DEVICE_PATH}/`));
  const serverDevice = () => server.homeserver.control.dehydratedDevice(aliceId)?.deviceId;

  it("uploads a device at start when the server has none", async () => {
    server.homeserver.control.clearRequestLog();
    const result = await alice.dehydration.start({ rotateEveryMs: HOUR });
    expect(result).toMatchObject({
      action: "replaced",
      previousDeviceId: undefined,
      dueAtMs: clock.now() + HOUR,
    });
    if (result.action !== "replaced") throw new Error("expected an upload");
    expect(serverDevice()).toBe(result.deviceId);
    expect(puts()).toHaveLength(1);
    expect(eventsCalls()).toEqual([]);
  });

  it("neither drains nor replaces on a restart before the interval has passed", async () => {
    await alice.dehydration.stop();
    const before = serverDevice();
    await clock.advance(HOUR / 2);
    server.homeserver.control.clearRequestLog();
    expect(await alice.dehydration.start({ rotateEveryMs: HOUR })).toMatchObject({
      action: "waited",
      deviceId: before,
      dueAtMs: clock.now() + HOUR / 2,
    });
    expect(puts()).toEqual([]);
    expect(eventsCalls()).toEqual([]);
  });

  it("drains the device to its end and then replaces it, exactly when due", async () => {
    const old = serverDevice()!;
    const messages = await bobSharesRoomKeys(server, aliceId, 3, "bob", watch);
    expect(server.homeserver.state.toDevice.inbox(aliceId, old)).toHaveLength(3);
    expect(await decryptable(alice, messages)).toBe(0);
    server.homeserver.control.clearRequestLog();

    await clock.advance(HOUR / 2 - 1);
    expect(puts()).toEqual([]);
    expect(eventsCalls()).toEqual([]);

    const order: string[] = [];
    alice.events.once("dehydration.drain.completed", () => order.push("drained"));
    const replaced = next(alice, "dehydration.rotation.replaced");
    alice.events.once("dehydration.rotation.replaced", () => order.push("replaced"));
    await clock.advance(1);
    expect(await replaced).toMatchObject({ previousDeviceId: old, reason: "due" });
    expect(order).toEqual(["drained", "replaced"]);
    // On the wire too: every events request before the one PUT.
    const put = puts();
    expect(put).toHaveLength(1);
    const events = eventsCalls().filter((e) => e.path.endsWith("/events"));
    expect(events.length).toBeGreaterThan(0);
    expect(Math.max(...events.map((e) => e.startOrder))).toBeLessThan(put[0]!.startOrder);
    expect(serverDevice()).not.toBe(old);
    expect(await decryptable(alice, messages)).toBe(3);
    expect(await record(alice)).toMatchObject({ deviceId: serverDevice(), sinceMs: clock.now() });
  });

  it("backs off when another client rotated with a new key: re-reads the key, reschedules, uploads nothing", async () => {
    const other = await newLogin(server, { userId: aliceId, recoveryKey } as Alice, { watch });
    clients.push(other.client);
    // A real key change: the other client makes a new dehydration key before its device.
    const { deviceId: theirs, storedKey: newKey } = await inClient(other.client, "uploadUnderNewKey", ssKey);
    await watchDehydrationKey(watch, other.client);
    const cachedKey = async (client: TestClient) => await inClient(client, "cachedDehydrationKey");
    expect(await cachedKey(alice)).not.toBe(newKey);
    server.homeserver.control.clearRequestLog();

    const keyChanged = next(alice, "dehydration.keyChanged");
    const adopted = next(alice, "dehydration.rotation.adopted");
    const scheduled = new Promise<E2eeClientEvents["dehydration.rotation.scheduled"]>((resolve) =>
      alice.events.on("dehydration.rotation.scheduled", (e) => e.deviceId === theirs && resolve(e)),
    );
    await clock.advance(HOUR);
    expect(await adopted).toEqual({ deviceId: theirs, reason: "replaced_elsewhere" });
    expect(await keyChanged).toEqual({ source: "secret-storage" });
    // The key was read again from the account data, under both names, and is now the one cached.
    const reads = log()
      .filter((e) => e.method === "GET" && e.path.includes("/account_data/"))
      .map((e) => decodeURIComponent(e.path.split("/account_data/")[1]!));
    expect(reads).toEqual(expect.arrayContaining(Object.values(DEHYDRATION_KEY_SECRET_NAMES)));
    expect(await cachedKey(alice)).toBe(newKey);
    expect((await scheduled).dueAtMs).toBe(clock.now() + HOUR);
    expect(puts()).toEqual([]);
    expect(eventsCalls().filter((e) => e.path.endsWith("/events"))).toEqual([]);
    expect(serverDevice()).toBe(theirs);
    expect(await record(alice)).toEqual({ deviceId: theirs, sinceMs: clock.now(), uploadedHere: false });
  });

  it("lets a new login drain the device waiting for it, then replace it, at start", async () => {
    const waiting = serverDevice()!;
    const messages = await bobSharesRoomKeys(server, aliceId, 2, "carol", watch);
    const login = await newLogin(server, { userId: aliceId, recoveryKey } as Alice, { watch });
    clients.push(login.client);
    expect(await decryptable(login.client, messages)).toBe(0);
    // On the login's own (system) clock this time, with the key passed to `start()`.
    const drained = next(login.client, "dehydration.drain.completed");
    const result = await login.client.dehydration.start({ rotateEveryMs: HOUR, secretStorageKey: ssKey });
    expect(result).toMatchObject({ action: "replaced", previousDeviceId: waiting });
    expect(await drained).toMatchObject({ deviceId: waiting });
    expect(await decryptable(login.client, messages)).toBe(2);
    await login.client.dehydration.stop();
  });

  it("stops on the ManualClock: nothing runs once stop() has resolved", async () => {
    expect(await clock.sleeping()).toBeGreaterThan(0);
    expect((await alice.dehydration.status()).rotation.running).toBe(true);
    await alice.dehydration.stop();
    expect(await clock.sleeping()).toBe(0);
    expect((await alice.dehydration.status()).rotation.running).toBe(false);
    server.homeserver.control.clearRequestLog();
    await clock.advance(10 * HOUR);
    expect(log().filter((e) => e.path.startsWith(DEHYDRATED_DEVICE_PATH))).toEqual([]);
  });

  it("leaks no key, recovery key or access token into logs, errors or events", async () => {
    for (const client of clients) await watchDehydrationKey(watch, client);
    expect(watch.events.some((e) => e.name === "dehydration.rotation.replaced")).toBe(true);
    watch.expectNoLeaks();
  });
});
