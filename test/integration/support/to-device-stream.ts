import { beforeAll } from "vitest";
import { loadCryptoWasm } from "../../../src/crypto/load-wasm.js";
import type { SyncPositions } from "../../../src/sync/sync-position-store.js";
import type { ProfileName } from "../../../src/testing/index.js";
import { inClient, type TestClient } from "./client-mode.js";
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
  client: TestClient;
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

/** The sync positions `client` stored, as a reload would read them. */
export function storedPositions(client: TestClient): Promise<SyncPositions> {
  return inClient(client, "storedSyncPositions");
}

/** Overwrites `client`'s stored sync positions. */
export function storePositions(client: TestClient, positions: SyncPositions): Promise<void> {
  return inClient(client, "storeSyncPositions", positions);
}
