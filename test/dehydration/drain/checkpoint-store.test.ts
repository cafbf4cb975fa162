import { IDBFactory } from "fake-indexeddb";
import { describe, expect, it } from "vitest";
import {
  type DrainCheckpoint,
  DrainCheckpointStore,
} from "../../../src/dehydration/drain/checkpoint-store.js";
import { IndexedDbStateStore } from "../../../src/state/indexeddb-state-store.js";
import { MemoryStateStore } from "../../../src/state/memory-state-store.js";

const alice = "@alice:example.org";

const checkpoint: DrainCheckpoint = {
  deviceId: "abc/def+GHI",
  position: { cursor: "d42", pages: 3, events: 1_200, roomKeys: 1_150 },
  trusted: {
    cursor: "d7",
    skip: { events: 12, digest: "ab".repeat(32) },
    pages: 1,
    events: 12,
    roomKeys: 12,
  },
  guard: { events: 1_188, elapsedMs: 2_500 },
  complete: false,
  savedAtMs: 1_700_000_000_000,
};

const stored = (overrides: Record<string, unknown>) => ({ ...checkpoint, version: 2, ...overrides });

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
    const fresh = { ...checkpoint, position: { ...checkpoint.position, cursor: undefined } };
    await store.save(fresh);
    expect(await store.load()).toEqual(fresh);
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
    ["an unknown version", stored({ version: 3 })],
    // Version 1 kept the server's cursor for every page of a truncated run: never resumed from.
    [
      "a version 1 checkpoint",
      {
        version: 1,
        deviceId: "abc/def+GHI",
        cursor: "d10",
        complete: false,
        pages: 10,
        events: 0,
        roomKeys: 0,
        savedAtMs: 1,
      },
    ],
    ["a negative count", stored({ position: { ...checkpoint.position, pages: -1 } })],
    ["an empty device id", stored({ deviceId: "" })],
    ["a numeric cursor", stored({ position: { ...checkpoint.position, cursor: 42 } })],
    [
      "a skip of no events",
      stored({ trusted: { ...checkpoint.trusted, skip: { events: 0, digest: "ab".repeat(32) } } }),
    ],
    [
      "a skip without a SHA-256 digest",
      stored({ trusted: { ...checkpoint.trusted, skip: { events: 3, digest: "x" } } }),
    ],
    ["no guard accounting", stored({ guard: undefined })],
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
