import type { AccountDataAccess } from "../../src/secret-storage/secret-storage.js";

/**
 * Account data held the way a server holds it: JSON in, JSON out, so neither our code nor
 * matrix-js-sdk can share object references through it. Serves both our `AccountDataAccess` and
 * matrix-js-sdk's `AccountDataClient` methods over the same map, for interop tests.
 */
export class InMemoryAccountData implements AccountDataAccess {
  readonly entries = new Map<string, string>();

  async get(type: string): Promise<Record<string, unknown> | undefined> {
    const text = this.entries.get(type);
    return text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>);
  }

  async set(type: string, content: Record<string, unknown>): Promise<void> {
    this.entries.set(type, JSON.stringify(content));
  }

  /** Writes raw content, for tests that plant malformed or hostile account data. */
  plant(type: string, content: unknown): void {
    this.entries.set(type, JSON.stringify(content));
  }

  // matrix-js-sdk's AccountDataClient shape.
  getAccountDataFromServer = async (type: string): Promise<Record<string, unknown> | null> =>
    (await this.get(type)) ?? null;

  setAccountData = async (type: string, content: Record<string, unknown>): Promise<Record<string, never>> => {
    await this.set(type, content);
    return {};
  };
}
