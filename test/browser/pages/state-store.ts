import { IndexedDbStateStore } from "../../../src/state/indexeddb-state-store.js";
import { exposeScenarios } from "./scenario-protocol.js";

/** Open stores by database name; a scenario opens on first use, as an app would at startup. */
const stores = new Map<string, IndexedDbStateStore>();

async function storeFor(databaseName: string): Promise<IndexedDbStateStore> {
  let store = stores.get(databaseName);
  if (store === undefined) {
    store = await IndexedDbStateStore.open(databaseName);
    stores.set(databaseName, store);
  }
  return store;
}

const scenarios = {
  async durability(databaseName: string) {
    return (await storeFor(databaseName)).durability;
  },

  async set(databaseName: string, key: string, value: unknown) {
    await (await storeFor(databaseName)).set(key, value);
  },

  /** `{ found: false }` rather than `undefined`, so absence is explicit on the Node side. */
  async get(databaseName: string, key: string) {
    const value = await (await storeFor(databaseName)).get<unknown>(key);
    return value === undefined ? { found: false as const } : { found: true as const, value };
  },

  async delete(databaseName: string, key: string) {
    await (await storeFor(databaseName)).delete(key);
  },

  async closeAll() {
    for (const store of stores.values()) await store.close();
    stores.clear();
  },

  /** A value IndexedDB could clone but JSON cannot: must fail the same way as in memory. */
  async setBigInt(databaseName: string, key: string) {
    await (await storeFor(databaseName)).set(key, 1n);
  },
};

export type StateStoreScenarios = typeof scenarios;
exposeScenarios(scenarios);
