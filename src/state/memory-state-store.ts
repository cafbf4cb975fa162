import { deserialiseStateValue, type StateStore, serialiseStateValue } from "./state-store.js";

/** Lives as long as the object: for tests, Node without a durable crypto store, and throwaway sessions. */
export class MemoryStateStore implements StateStore {
  readonly durability = "memory" as const;
  readonly #values = new Map<string, string>();

  async get<T>(key: string): Promise<T | undefined> {
    const text = this.#values.get(key);
    return text === undefined ? undefined : deserialiseStateValue<T>(key, text);
  }

  async set(key: string, value: unknown): Promise<void> {
    this.#values.set(key, serialiseStateValue(key, value));
  }

  async delete(key: string): Promise<void> {
    this.#values.delete(key);
  }
}
