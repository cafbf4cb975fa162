import { IDBFactory } from "fake-indexeddb";
import { describe, expect, it } from "vitest";
import { IndexedDbStateStore } from "../../src/state/indexeddb-state-store.js";
import { stateStoreContract } from "./state-store-contract.js";

/** Writes raw content behind the store's back, as another version of the app might have. */
function plantRaw(factory: IDBFactory, databaseName: string, key: string, value: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const open = factory.open(databaseName);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction("state", "readwrite");
      tx.objectStore("state").put(value, key);
      tx.oncomplete = () => {
        db.close();
        resolve();
      };
      tx.onerror = () => reject(tx.error);
    };
  });
}

describe("IndexedDbStateStore", () => {
  stateStoreContract(() => IndexedDbStateStore.open("contract", { indexedDB: new IDBFactory() }));

  it("keeps values across close and reopen of the same database", async () => {
    const factory = new IDBFactory();
    const first = await IndexedDbStateStore.open("app-state", { indexedDB: factory });
    await first.set("checkpoint", { cursor: "d42" });
    await first.close();
    const second = await IndexedDbStateStore.open("app-state", { indexedDB: factory });
    expect(await second.get("checkpoint")).toEqual({ cursor: "d42" });
    await second.close();
  });

  it("reopens by itself after close", async () => {
    const store = await IndexedDbStateStore.open("reopen", { indexedDB: new IDBFactory() });
    await store.set("k", 1);
    await store.close();
    expect(await store.get("k")).toBe(1);
  });

  it("keeps databases of different names apart", async () => {
    const factory = new IDBFactory();
    const a = await IndexedDbStateStore.open("user-a", { indexedDB: factory });
    const b = await IndexedDbStateStore.open("user-b", { indexedDB: factory });
    await a.set("k", "A");
    expect(await b.get("k")).toBeUndefined();
    expect(b.databaseName).toBe("user-b");
  });

  it("claims durable by default and memory when told the factory is in-memory", async () => {
    const factory = new IDBFactory();
    expect((await IndexedDbStateStore.open("d1", { indexedDB: factory })).durability).toBe("durable");
    expect(
      (await IndexedDbStateStore.open("d2", { indexedDB: factory, durability: "memory" })).durability,
    ).toBe("memory");
  });

  it("reports a stored value that is not JSON text as corrupt_value", async () => {
    const factory = new IDBFactory();
    const store = await IndexedDbStateStore.open("corrupt", { indexedDB: factory });
    await store.close();
    await plantRaw(factory, "corrupt", "object", { not: "text" });
    await plantRaw(factory, "corrupt", "broken", "{not json");
    await expect(store.get("object")).rejects.toMatchObject({ code: "corrupt_value" });
    await expect(store.get("broken")).rejects.toMatchObject({ code: "corrupt_value" });
  });

  it("steps aside when another connection deletes the database, then works again", async () => {
    const factory = new IDBFactory();
    const store = await IndexedDbStateStore.open("deleted", { indexedDB: factory });
    await store.set("k", 1);
    await new Promise<void>((resolve, reject) => {
      const del = factory.deleteDatabase("deleted");
      del.onsuccess = () => resolve();
      del.onerror = () => reject(del.error);
    });
    expect(await store.get("k")).toBeUndefined();
    await store.set("k", 2);
    expect(await store.get("k")).toBe(2);
  });

  it("fails with store_failed when no IndexedDB exists", async () => {
    const original = globalThis.indexedDB;
    // Node has no global indexedDB; make sure of it for this test.
    Object.defineProperty(globalThis, "indexedDB", { value: undefined, configurable: true });
    try {
      await expect(IndexedDbStateStore.open("none")).rejects.toMatchObject({ code: "store_failed" });
    } finally {
      Object.defineProperty(globalThis, "indexedDB", { value: original, configurable: true });
    }
  });
});
