import { beforeAll } from "vitest";
import { clientInternals, type E2eeClient } from "../../../src/client.js";
import { loadCryptoWasm } from "../../../src/crypto/load-wasm.js";
import { SyncPositionStore } from "../../../src/sync/sync-position-store.js";
import type { ProfileName } from "../../../src/testing/index.js";
import { type Account, createAccount } from "./foundation-fixtures.js";
import { SyncRecorder, type SyncServer, useSyncServers } from "./sync-fixtures.js";

/**
 * The set-up of the tests that stream numbered to-device messages from Bob to Alice's device over
 * a real socket and follow Alice's positions through it.
 */

/** `from`, `from + 1`, … up to `to` (not included). */
export const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** One test's mock with Alice's client on it (her device keys published) and Bob to send to her. */
export interface AliceAndBob extends Pick<SyncServer, "server" | "hs" | "serverClock"> {
  alice: Account;
  bob: Account;
  /** Alice's client, not syncing yet. */
  client: E2eeClient;
  /** What Alice's app hears from her client. */
  seen: SyncRecorder;
}

/**
 * Loads crypto-wasm once for the file and registers the closing of each test's client and server
 * (`useSyncServers`). Call once per file; each test then starts its mock with the profile it runs on.
 */
export function useAliceAndBob(): (profile: ProfileName) => Promise<AliceAndBob> {
  beforeAll(() => loadCryptoWasm());
  const start = useSyncServers();
  return async (profile) => {
    const { server, hs, serverClock, open } = await start(profile);
    const alice = createAccount(server, "alice");
    const bob = createAccount(server, "bob");
    const client = await open(alice);
    await client.processOutgoingRequests();
    const seen = new SyncRecorder(client);
    return { server, hs, serverClock, alice, bob, client, seen };
  };
}

/** The store `client` keeps `account`'s sync positions in, as a reload would read them. */
export function positionStoreOf(client: E2eeClient, account: Pick<Account, "userId" | "deviceId">) {
  return new SyncPositionStore({
    stateStore: clientInternals(client).stateStore,
    userId: account.userId,
    deviceId: account.deviceId,
    cryptoStoreDurability: "memory",
  });
}
