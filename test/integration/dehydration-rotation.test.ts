import { initAsync } from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { E2eeClient } from "../../src/client.js";
import type { DehydrationEvents } from "../../src/dehydration/device/events.js";
import { DEHYDRATED_DEVICE_PATH, DEHYDRATION_KEY_SECRET_NAMES } from "../../src/dehydration/device/names.js";
import type { DehydratedDeviceDrainer } from "../../src/dehydration/drain/drainer.js";
import { DehydratedDeviceRotation, type RotationEvents } from "../../src/dehydration/rotation/rotation.js";
import type { SecretStorageKey } from "../../src/secret-storage/secret-storage.js";
import {
  ManualClock,
  type ProfileName,
  type RunningMockServer,
  startMockServer,
} from "../../src/testing/index.js";
import {
  type Alice,
  bobSharesRoomKeys,
  decryptable,
  drainerFor,
  newLogin,
  openClient,
  PASSWORD,
  watchDehydrationKey,
} from "./support/dehydration-drain-fixtures.js";
import { LeakWatch } from "./support/foundation-fixtures.js";

/**
 * Replacement and rotation end to end, on a `ManualClock`, over a real socket with real
 * crypto-wasm machines: the rotation uploads exactly when due and drains first, does nothing on a
 * restart before then, backs off when another client rotated, lets a new login drain the waiting
 * device before replacing it, and stops cleanly.
 */

const HOUR = 60 * 60 * 1000;
const profiles: ProfileName[] = ["synapse-1.157", "synapse-1.156", "tuwunel", "msc"];

beforeAll(async () => {
  await initAsync();
});

/** Every client, rotation and secret of this file: logs, errors and events must not show a secret. */
const watch = new LeakWatch();

describe.each(profiles)("rotating the dehydrated device on %s", (profile) => {
  let server: RunningMockServer;
  let aliceId: string;
  let recoveryKey: string;
  let ssKey: SecretStorageKey;
  let alice: E2eeClient;
  const clock = new ManualClock();
  const clients: E2eeClient[] = [];
  const rotations: DehydratedDeviceRotation[] = [];
  let rotation: DehydratedDeviceRotation;
  let drainer: DehydratedDeviceDrainer;

  beforeAll(async () => {
    server = await startMockServer({ profile });
    const created = server.homeserver.control.createUser("alice", { password: PASSWORD })!;
    aliceId = created.userId;
    alice = await openClient(server, created, { watch });
    clients.push(alice);
    const boot = await alice.bootstrapCrossSigning({ createSecretStorageKey: true });
    recoveryKey = boot.recoveryKey!;
    ssKey = boot.secretStorageKey!;
    watch.secret(recoveryKey);
    watch.secretBytes(ssKey.key);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(rotations.map((r) => r.stop()));
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  function rotationFor(client: E2eeClient, clientDrainer: DehydratedDeviceDrainer): DehydratedDeviceRotation {
    const made = new DehydratedDeviceRotation({
      manager: client.dehydration,
      drainer: clientDrainer,
      stateStore: client.stateStore,
      userId: client.userId,
      clock,
      logger: watch.logger,
      getSecretStorageKey: async () => ssKey,
    });
    watch.watchEvents(made.events, ["scheduled", "replaced", "adopted", "kept", "failed"]);
    rotations.push(made);
    return made;
  }

  function next<K extends keyof RotationEvents>(
    r: DehydratedDeviceRotation,
    name: K,
  ): Promise<RotationEvents[K]> {
    return new Promise((resolve) => r.events.once(name, resolve));
  }

  const log = () => server.homeserver.control.requestLog();
  const puts = () => log().filter((e) => e.method === "PUT" && e.path === DEHYDRATED_DEVICE_PATH);
  const eventsCalls = () => log().filter((e) => e.path.startsWith(`${DEHYDRATED_DEVICE_PATH}/`));
  const serverDevice = () => server.homeserver.control.dehydratedDevice(aliceId)?.deviceId;

  it("uploads a device at start when the server has none", async () => {
    drainer = drainerFor(alice, {}, watch);
    rotation = rotationFor(alice, drainer);
    server.homeserver.control.clearRequestLog();
    const result = await rotation.start({ rotateEveryMs: HOUR });
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
    await rotation.stop();
    const before = serverDevice();
    await clock.advance(HOUR / 2);
    server.homeserver.control.clearRequestLog();
    rotation = rotationFor(alice, drainer);
    expect(await rotation.start({ rotateEveryMs: HOUR })).toMatchObject({
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
    drainer.events.once("completed", () => order.push("drained"));
    const replaced = next(rotation, "replaced");
    rotation.events.once("replaced", () => order.push("replaced"));
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
    expect(await rotation.record()).toMatchObject({ deviceId: serverDevice(), sinceMs: clock.now() });
  });

  it("backs off when another client rotated with a new key: re-reads the key, reschedules, uploads nothing", async () => {
    const other = await newLogin(server, { userId: aliceId, recoveryKey } as Alice, { watch });
    clients.push(other.client);
    // A real key change: the other client makes a new dehydration key before its device.
    await other.client.dehydration.resetKey({ secretStorageKey: ssKey });
    const { deviceId: theirs } = await other.client.dehydration.createAndUpload({ secretStorageKey: ssKey });
    await watchDehydrationKey(watch, other.client);
    const newKey = await other.client.secretStorage.get(DEHYDRATION_KEY_SECRET_NAMES.unstable, ssKey);
    const cachedKey = async (client: E2eeClient) =>
      (await client.machine.dehydratedDevices().getDehydratedDeviceKey())?.toBase64();
    expect(await cachedKey(alice)).not.toBe(newKey);
    server.homeserver.control.clearRequestLog();

    const keyChanged = new Promise<DehydrationEvents["keyChanged"]>((resolve) =>
      alice.dehydration.events.once("keyChanged", resolve),
    );
    const adopted = next(rotation, "adopted");
    const scheduled = new Promise<RotationEvents["scheduled"]>((resolve) =>
      rotation.events.on("scheduled", (e) => e.deviceId === theirs && resolve(e)),
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
    expect(await rotation.record()).toEqual({ deviceId: theirs, sinceMs: clock.now(), uploadedHere: false });
  });

  it("lets a new login drain the device waiting for it, then replace it, at start", async () => {
    const waiting = serverDevice()!;
    const messages = await bobSharesRoomKeys(server, aliceId, 2, "carol", watch);
    const login = await newLogin(server, { userId: aliceId, recoveryKey } as Alice, { watch });
    clients.push(login.client);
    expect(await decryptable(login.client, messages)).toBe(0);
    // This time through the facade's own drainer and rotation.
    const loginRotation = login.client.dehydrationRotation;
    const drained = new Promise((resolve) =>
      login.client.dehydrationDrainer.events.once("completed", resolve),
    );
    const result = await loginRotation.start({ rotateEveryMs: HOUR, getSecretStorageKey: async () => ssKey });
    expect(result).toMatchObject({ action: "replaced", previousDeviceId: waiting });
    expect(await drained).toMatchObject({ deviceId: waiting });
    expect(await decryptable(login.client, messages)).toBe(2);
    await loginRotation.stop();
  });

  it("stops on the ManualClock: nothing runs once stop() has resolved", async () => {
    expect(clock.pendingSleeps).toBeGreaterThan(0);
    await rotation.stop();
    expect(clock.pendingSleeps).toBe(0);
    server.homeserver.control.clearRequestLog();
    await clock.advance(10 * HOUR);
    expect(log().filter((e) => e.path.startsWith(DEHYDRATED_DEVICE_PATH))).toEqual([]);
  });

  it("leaks no key, recovery key or access token into logs, errors or events", async () => {
    for (const client of clients) await watchDehydrationKey(watch, client);
    expect(watch.events.some((e) => e.name === "replaced")).toBe(true);
    watch.expectNoLeaks();
  });
});
