import {
  deserialiseStateValue,
  type StateStore,
  StateStoreError,
  serialiseStateValue,
} from "./state-store.js";

const OBJECT_STORE = "state";
const SCHEMA_VERSION = 1;

/** Options of `IndexedDbStateStore.open`. */
export interface IndexedDbStateStoreOptions {
  /** The IndexedDB factory; default `globalThis.indexedDB`. Node tests pass `fake-indexeddb`'s. */
  indexedDB?: IDBFactory;
  /**
   * What this store may claim. Default `"durable"`; pass `"memory"` for an in-memory factory such as
   * `fake-indexeddb`, so callers never trust it to survive a restart.
   */
  durability?: "memory" | "durable";
}

function failed(operation: string, cause: unknown): StateStoreError {
  return new StateStoreError("store_failed", `IndexedDB ${operation} failed`, {
    cause,
    details: { operation },
  });
}

function settle<T>(request: IDBRequest<T>, operation: string): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(failed(operation, request.error));
  });
}

function committed(tx: IDBTransaction, operation: string): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(failed(operation, tx.error));
    tx.onabort = () => reject(failed(operation, tx.error));
  });
}

/**
 * A `StateStore` in one IndexedDB database (browsers, Electron renderers), one object store of JSON
 * text keyed by string. Writes resolve once their transaction commits, with `durability: "strict"`
 * where the browser supports it, so "durable" means flushed, not merely queued.
 */
export class IndexedDbStateStore implements StateStore {
  readonly durability: "memory" | "durable";
  readonly databaseName: string;
  readonly #factory: IDBFactory;
  #db: Promise<IDBDatabase> | undefined;

  private constructor(databaseName: string, factory: IDBFactory, durability: "memory" | "durable") {
    this.databaseName = databaseName;
    this.#factory = factory;
    this.durability = durability;
  }

  /** Opens (creating if needed) the database `databaseName`. */
  static async open(
    databaseName: string,
    options: IndexedDbStateStoreOptions = {},
  ): Promise<IndexedDbStateStore> {
    const factory = options.indexedDB ?? globalThis.indexedDB;
    if (factory === undefined) {
      throw new StateStoreError("store_failed", "IndexedDB is not available in this environment");
    }
    const store = new IndexedDbStateStore(databaseName, factory, options.durability ?? "durable");
    await store.#database();
    return store;
  }

  async get<T>(key: string): Promise<T | undefined> {
    const text = await this.#run("get", async (db) => {
      const tx = db.transaction(OBJECT_STORE, "readonly");
      return settle(tx.objectStore(OBJECT_STORE).get(key), "get");
    });
    return text === undefined ? undefined : deserialiseStateValue<T>(key, text);
  }

  async set(key: string, value: unknown): Promise<void> {
    const text = serialiseStateValue(key, value);
    await this.#run("set", async (db) => {
      const tx = db.transaction(OBJECT_STORE, "readwrite", { durability: "strict" });
      const done = committed(tx, "set");
      tx.objectStore(OBJECT_STORE).put(text, key);
      await done;
    });
  }

  async delete(key: string): Promise<void> {
    await this.#run("delete", async (db) => {
      const tx = db.transaction(OBJECT_STORE, "readwrite", { durability: "strict" });
      const done = committed(tx, "delete");
      tx.objectStore(OBJECT_STORE).delete(key);
      await done;
    });
  }

  /** Closes the connection; a later call reopens it. */
  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    if (db !== undefined) (await db.catch(() => undefined))?.close();
  }

  async #run<R>(operation: string, body: (db: IDBDatabase) => Promise<R>): Promise<R> {
    try {
      return await body(await this.#database());
    } catch (cause) {
      // `transaction()` throws synchronously (e.g. on a closed connection): still a typed error.
      throw cause instanceof StateStoreError ? cause : failed(operation, cause);
    }
  }

  #database(): Promise<IDBDatabase> {
    if (this.#db === undefined) {
      const opening = this.#openDatabase();
      // A failed open is not cached, so the next call retries.
      opening.catch(() => {
        if (this.#db === opening) this.#db = undefined;
      });
      this.#db = opening;
    }
    return this.#db;
  }

  #openDatabase(): Promise<IDBDatabase> {
    return new Promise((resolve, reject) => {
      let request: IDBOpenDBRequest;
      try {
        request = this.#factory.open(this.databaseName, SCHEMA_VERSION);
      } catch (cause) {
        reject(failed("open", cause));
        return;
      }
      request.onupgradeneeded = () => {
        const db = request.result;
        if (!db.objectStoreNames.contains(OBJECT_STORE)) db.createObjectStore(OBJECT_STORE);
      };
      request.onsuccess = () => {
        const db = request.result;
        // Another tab (or a test) upgrading or deleting the database: step aside, reopen on next use.
        db.onversionchange = () => {
          db.close();
          this.#db = undefined;
        };
        resolve(db);
      };
      request.onerror = () => reject(failed("open", request.error));
    });
  }
}
