import { IDBFactory } from "fake-indexeddb";
import { describe, expect, it } from "vitest";
import { type DrainCheckpoint, DrainCheckpointStore } from "../../src/dehydration/checkpoint-store.js";
import { IndexedDbStateStore } from "../../src/state/indexeddb-state-store.js";
import { MemoryStateStore } from "../../src/state/memory-state-store.js";

const alice = "@alice:example.org";

const checkpoint: DrainCheckpoint = {
  deviceId: "abc/def+GHI",
  cursor: "d42",
  complete: false,
  pages: 3,
  events: 1_200,
  roomKeys: 1_150,
  savedAtMs: 1_700_000_000_000,
};

/** An IndexedDB state store that claims durability, as a browser's would. */
function durableStore(factory = new IDBFactory()): Promise<IndexedDbStateStore> {
  return IndexedDbStateStore.open("checkpoints", { indexedDB: factory, durability: "durable" });
}

describe("DrainCheckpointStore", () => {
  it("reads back what it saved, and nothing after clear", async () => {
    const store = new DrainCheckpointStore({
      stateStore: new MemoryStateStore(),
      userId: alice,
      cryptoStoreDurability: "memory",
    });
    expect(await store.load()).toBeUndefined();
    await store.save(checkpoint);
    expect(await store.load()).toEqual(checkpoint);
    await store.clear();
    expect(await store.load()).toBeUndefined();
  });

  it("keeps a checkpoint without a cursor (the first page is still to come)", async () => {
    const store = new DrainCheckpointStore({
      stateStore: new MemoryStateStore(),
      userId: alice,
      cryptoStoreDurability: "memory",
    });
    await store.save({ ...checkpoint, cursor: undefined });
    expect(await store.load()).toEqual({ ...checkpoint, cursor: undefined });
  });

  it("persists in a durable state store beside a durable crypto store, for the next session", async () => {
    const factory = new IDBFactory();
    const first = new DrainCheckpointStore({
      stateStore: await durableStore(factory),
      userId: alice,
      cryptoStoreDurability: "durable",
    });
    expect(first.durability).toBe("durable");
    await first.save(checkpoint);

    const afterReload = new DrainCheckpointStore({
      stateStore: await durableStore(factory),
      userId: alice,
      cryptoStoreDurability: "durable",
    });
    expect(await afterReload.load()).toEqual(checkpoint);
  });

  it("never writes to a durable state store when the crypto store is in memory", async () => {
    const stateStore = await durableStore();
    const store = new DrainCheckpointStore({ stateStore, userId: alice, cryptoStoreDurability: "memory" });
    expect(store.durability).toBe("memory");
    await store.save(checkpoint);
    // Within the session the drain can still resume…
    expect(await store.load()).toEqual(checkpoint);
    // …but a new session, whose in-memory room keys are gone, starts from the first page.
    const nextSession = new DrainCheckpointStore({
      stateStore,
      userId: alice,
      cryptoStoreDurability: "memory",
    });
    expect(await nextSession.load()).toBeUndefined();
    expect(await stateStore.get(`dehydration/drain-checkpoint/${alice}`)).toBeUndefined();
  });

  it("claims no more than an in-memory state store gives, even beside a durable crypto store", async () => {
    const store = new DrainCheckpointStore({
      stateStore: new MemoryStateStore(),
      userId: alice,
      cryptoStoreDurability: "durable",
    });
    expect(store.durability).toBe("memory");
  });

  it("keeps each user's checkpoint apart in a shared state store", async () => {
    const stateStore = new MemoryStateStore();
    const a = new DrainCheckpointStore({ stateStore, userId: alice, cryptoStoreDurability: "memory" });
    const b = new DrainCheckpointStore({
      stateStore,
      userId: "@bob:example.org",
      cryptoStoreDurability: "memory",
    });
    await a.save(checkpoint);
    expect(await b.load()).toBeUndefined();
  });

  const corrupt: [string, unknown][] = [
    ["a string", "d42"],
    ["an unknown version", { ...checkpoint, version: 2 }],
    ["a negative count", { ...checkpoint, version: 1, pages: -1 }],
    ["an empty device id", { ...checkpoint, version: 1, deviceId: "" }],
    ["a numeric cursor", { ...checkpoint, version: 1, cursor: 42 }],
  ];
  for (const [what, value] of corrupt) {
    it(`drops a stored value that is ${what} instead of resuming from it`, async () => {
      const stateStore = new MemoryStateStore();
      await stateStore.set(`dehydration/drain-checkpoint/${alice}`, value);
      const store = new DrainCheckpointStore({ stateStore, userId: alice, cryptoStoreDurability: "memory" });
      expect(await store.load()).toBeUndefined();
      expect(await stateStore.get(`dehydration/drain-checkpoint/${alice}`)).toBeUndefined();
    });
  }

  it("remembers the server's events variant in the state store itself, as it says nothing about keys", async () => {
    const stateStore = await durableStore();
    const store = new DrainCheckpointStore({ stateStore, userId: alice, cryptoStoreDurability: "memory" });
    expect(await store.loadVariant()).toBeUndefined();
    await store.saveVariant("post");
    const nextSession = new DrainCheckpointStore({
      stateStore,
      userId: alice,
      cryptoStoreDurability: "memory",
    });
    expect(await nextSession.loadVariant()).toBe("post");
    await stateStore.set(`dehydration/events-variant/${alice}`, "PATCH");
    expect(await nextSession.loadVariant()).toBeUndefined();
  });
});
