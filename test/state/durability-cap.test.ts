import { IDBFactory } from "fake-indexeddb";
import { describe, expect, it } from "vitest";
import { DrainCheckpointStore } from "../../src/dehydration/drain/checkpoint-store.js";
import { noMoreDurableThanCryptoStore } from "../../src/state/durability-cap.js";
import { IndexedDbStateStore } from "../../src/state/indexeddb-state-store.js";
import { MemoryStateStore } from "../../src/state/memory-state-store.js";
import { SyncPositionStore } from "../../src/sync/sync-position-store.js";

/**
 * State that describes what the crypto store holds is never kept more durably than the crypto
 * store: surviving a restart the keys did not, a drain checkpoint would skip pages whose room keys
 * are gone, a to-device cursor would acknowledge messages whose keys are gone. Both stores of such
 * state take the same rule.
 */

const alice = "@alice:example.org";

function durableStore(): Promise<IndexedDbStateStore> {
  return IndexedDbStateStore.open("state", { indexedDB: new IDBFactory(), durability: "durable" });
}

describe("noMoreDurableThanCryptoStore", () => {
  it("gives a store in memory, not the durable state store, while the crypto store is in memory", async () => {
    const durable = await durableStore();
    const capped = noMoreDurableThanCryptoStore(durable, "memory");
    expect(capped).not.toBe(durable);
    expect(capped.durability).toBe("memory");
    await capped.set("k", 1);
    expect(await durable.get("k")).toBeUndefined();
  });

  it("gives the state store itself otherwise", async () => {
    const durable = await durableStore();
    const memory = new MemoryStateStore();
    expect(noMoreDurableThanCryptoStore(durable, "durable")).toBe(durable);
    expect(noMoreDurableThanCryptoStore(memory, "memory")).toBe(memory);
    expect(noMoreDurableThanCryptoStore(memory, "durable")).toBe(memory);
  });

  it("keeps the sync positions and the drain checkpoint out of a durable store beside a crypto store in memory", async () => {
    const durable = await durableStore();
    const positions = new SyncPositionStore({
      stateStore: durable,
      userId: alice,
      deviceId: "DEVICE",
      cryptoStoreDurability: "memory",
    });
    await positions.save({ pos: "1", toDeviceSince: "2", classicSince: undefined });
    expect(await positions.load()).toEqual({ pos: "1", toDeviceSince: "2", classicSince: undefined });
    const checkpoints = new DrainCheckpointStore({
      stateStore: durable,
      userId: alice,
      cryptoStoreDurability: "memory",
    });
    expect(checkpoints.durability).toBe("memory");
    await checkpoints.save({
      deviceId: "DEHYDRATED",
      position: { cursor: "d1", pages: 1, events: 1, roomKeys: 1 },
      trusted: { cursor: undefined, pages: 0, events: 0, roomKeys: 0 },
      guard: { events: 1, elapsedMs: 1 },
      complete: false,
      savedAtMs: 0,
    });
    expect(await checkpoints.load()).toBeDefined();
    // Nothing of either reached the durable store.
    expect(await durable.get(`sync/positions/${alice}/DEVICE`)).toBeUndefined();
    expect(await durable.get(`dehydration/drain-checkpoint/${alice}`)).toBeUndefined();
  });
});
