import "fake-indexeddb/auto";
import { initAsync } from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterAll, beforeAll, expect, it } from "vitest";
import { clientInternals, defaultStateStoreName } from "../../src/client.js";
import { DEHYDRATED_DEVICE_PATH } from "../../src/dehydration/device/names.js";
import type { SecretStorageKey } from "../../src/secret-storage/secret-storage.js";
import { IndexedDbStateStore } from "../../src/state/indexeddb-state-store.js";
import { MemoryStateStore } from "../../src/state/memory-state-store.js";
import { type RunningMockServer, startMockServer } from "../../src/testing/index.js";
import { describeInThread, inThreadClient, type TestClient } from "./support/client-mode.js";
import { openClient, PASSWORD, watchDehydrationKey } from "./support/dehydration-drain-fixtures.js";
import { LeakWatch } from "./support/foundation-fixtures.js";

/**
 * App restarts and the dehydrated-device rotation ("not on every start"), through the
 * facade's defaults only: a client given an IndexedDB crypto store keeps its state (the rotation
 * record, drain checkpoints) in IndexedDB beside it, so the next instance on the same store
 * remembers the device it uploaded and waits instead of draining and replacing it again.
 * fake-indexeddb stands in for a browser's IndexedDB; both stores outlive each client instance.
 */

beforeAll(async () => {
  await initAsync();
});

const watch = new LeakWatch();

describeInThread(
  "about the client's own state store: it reads it (clientInternals), passes one (stateStore), and reopens IndexedDB (fake-indexeddb) in the test's thread",
)("a client restarted on the same IndexedDB crypto store", () => {
  let server: RunningMockServer;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    server = await startMockServer({ profile: "synapse-1.157" });
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  const puts = () =>
    server.homeserver.control
      .requestLog()
      .filter((e) => e.method === "PUT" && e.path === DEHYDRATED_DEVICE_PATH);
  const pages = () =>
    server.homeserver.control.requestLog().filter((e) => e.path.startsWith(`${DEHYDRATED_DEVICE_PATH}/`));
  // Which state store a client chose is not on the face; these tests are about that choice.
  const stateStoreOf = (client: TestClient) => clientInternals(inThreadClient(client)).stateStore;

  it("remembers the device it uploaded: the second start waits, with no second PUT", async () => {
    const created = server.homeserver.control.createUser("alice", { password: PASSWORD })!;
    const cryptoStore = { name: "restart-alice", passphrase: "crypto store passphrase" };
    let ssKey: SecretStorageKey | undefined;
    // The app's key source, asked by every dehydration call that passes no key.
    const getSecretStorageKey = async () => ssKey;

    const first = await openClient(server, created, { watch, cryptoStore, getSecretStorageKey });
    const store = stateStoreOf(first);
    expect(store).toBeInstanceOf(IndexedDbStateStore);
    expect((store as IndexedDbStateStore).databaseName).toBe(defaultStateStoreName("restart-alice"));
    expect(store.durability).toBe("durable");
    const boot = await first.crossSigning.bootstrap({ createSecretStorageKey: true });
    ssKey = boot.secretStorageKey;
    watch.secret(boot.recoveryKey);
    watch.secretBytes(boot.secretStorageKey!.key);
    server.homeserver.control.clearRequestLog();
    const started = await first.dehydration.start();
    expect(started).toMatchObject({ action: "replaced", previousDeviceId: undefined });
    if (started.action !== "replaced") throw new Error("expected an upload");
    expect(puts()).toHaveLength(1);
    await watchDehydrationKey(watch, first);
    await first.close();

    // The app starts again: a new client for the same device on the same crypto store, with the
    // default state store.
    server.homeserver.control.clearRequestLog();
    const second = await openClient(server, created, { watch, cryptoStore, getSecretStorageKey });
    clients.push(second);
    expect((await second.dehydration.status()).rotation).toMatchObject({
      running: false,
      record: { deviceId: started.deviceId, uploadedHere: true },
    });
    const again = await second.dehydration.start();
    expect(again).toEqual({ action: "waited", deviceId: started.deviceId, dueAtMs: started.dueAtMs });
    expect(puts()).toEqual([]);
    expect(pages()).toEqual([]);
    expect(server.homeserver.control.dehydratedDevice(created.userId)?.deviceId).toBe(started.deviceId);
  });

  it("closes the state store it opened, so the database can be deleted at once", async () => {
    const created = server.homeserver.control.createUser("bob", { password: PASSWORD })!;
    const cryptoStore = { name: "restart-bob", passphrase: "crypto store passphrase" };
    const client = await openClient(server, created, { watch, cryptoStore });
    await stateStoreOf(client).set("probe", { written: true });
    await client.close();
    const outcome = await new Promise<string>((resolve) => {
      const request = indexedDB.deleteDatabase(defaultStateStoreName(cryptoStore.name));
      request.onsuccess = () => resolve("deleted");
      request.onblocked = () => resolve("blocked");
      request.onerror = () => resolve("failed");
    });
    expect(outcome).toBe("deleted");
  });

  it("keeps state in memory beside an in-memory machine, and uses a store the app gives", async () => {
    const created = server.homeserver.control.createUser("carol", { password: PASSWORD })!;
    const inMemory = await openClient(server, created, { watch });
    clients.push(inMemory);
    expect(stateStoreOf(inMemory)).toBeInstanceOf(MemoryStateStore);

    const own = new MemoryStateStore();
    const given = await openClient(server, created, {
      watch,
      cryptoStore: { name: "restart-carol", passphrase: "crypto store passphrase" },
      stateStore: own,
    });
    clients.push(given);
    expect(stateStoreOf(given)).toBe(own);
  });

  it("leaks no key, recovery key or access token into logs, errors or events", async () => {
    for (const client of clients) await watchDehydrationKey(watch, client);
    expect(watch.events.some((e) => e.name === "dehydration.rotation.replaced")).toBe(true);
    watch.expectNoLeaks();
  });
});
