import { beforeAll, describe, expect, it } from "vitest";
import { loadCryptoWasm } from "../../src/crypto/load-wasm.js";
import { inClient } from "./support/client-mode.js";
import { type Account, createAccount, loginNewDevice } from "./support/foundation-fixtures.js";
import {
  endedBefore,
  expectEncryptionRequests,
  KEYS_QUERY_PATH,
  knownDevices,
  matrixCall,
  posOf,
  SyncRecorder,
  type SyncServer,
  shareRoom,
  slidingProfiles,
  slidingRequests,
  useSyncServers,
  waitUntil,
} from "./support/sync-fixtures.js";

/**
 * Device lists through the encryption loop, on every profile's sliding sync: a change the server
 * reports in `e2ee.device_lists.changed` (MSC3884) makes the machine query that user's keys before
 * the loop asks again, so every new device is known afterwards; `left` reaches the app too. And a
 * change the server will never report — it happened while the position was lost, and a new
 * connection starts without `device_lists` — is found anyway, because `M_UNKNOWN_POS` marks every
 * tracked user for re-query (PROTOCOL.md, MSC4186: the client must treat all device lists as
 * stale).
 */

beforeAll(() => loadCryptoWasm());

const start = useSyncServers();

/** Alice and Bob share a room; Bob's first device has published its keys; Alice's loop runs and tracks Bob. */
async function aliceWatchesBob(s: SyncServer) {
  const alice = createAccount(s.server, "alice");
  const bob = createAccount(s.server, "bob");
  const bobFirst = await s.open(bob);
  await bobFirst.processOutgoingRequests();
  const roomId = await shareRoom(s.server.url, bob, alice);
  const client = await s.open(alice);
  await client.processOutgoingRequests();
  // An app tracks the members of its encrypted rooms; the machine queries only tracked users.
  await inClient(client, "trackUsers", [bob.userId]);
  const seen = new SyncRecorder(client);
  await client.sync.start();
  await waitUntil("Alice's loop long-polls", () => s.serverClock.pendingSleeps === 1);
  expect(await knownDevices(client, bob.userId)).toEqual([bob.deviceId]);
  return { alice, bob, roomId, client, seen };
}

/** Bob logs in on a new device, which publishes its keys. */
async function bobAddsDevice(s: SyncServer, bob: Account): Promise<Account> {
  const second = await loginNewDevice(s.server, bob);
  const client = await s.open(second);
  await client.processOutgoingRequests();
  return second;
}

function keyQueriesFor(s: SyncServer, userId: string) {
  return s.hs.control
    .requestLog()
    .filter(
      (e) =>
        e.path === KEYS_QUERY_PATH &&
        Object.keys((e.body as { device_keys?: object } | undefined)?.device_keys ?? {}).includes(userId),
    );
}

describe.each(slidingProfiles)("device lists through the encryption loop on %s", (profile) => {
  it("queries a user the server reports changed, so Bob's new device is known; reports Bob leaving", async () => {
    const s = await start(profile);
    const { bob, roomId, client, seen } = await aliceWatchesBob(s);
    const queriesBefore = keyQueriesFor(s, bob.userId).length;

    const second = await bobAddsDevice(s, bob);
    await waitUntil(
      "Alice's machine knows Bob's new device and her loop long-polls again",
      async () =>
        (await knownDevices(client, bob.userId)).includes(second.deviceId) &&
        s.serverClock.pendingSleeps === 1,
    );

    expect(await knownDevices(client, bob.userId)).toEqual([bob.deviceId, second.deviceId].sort());
    const changes = seen.of("sync.deviceListsChanged");
    expect(changes.some((c) => c.mode === "sliding" && c.changed.includes(bob.userId))).toBe(true);
    // Each query went out in the gap between a response and the next request: the loop waited for it.
    const requests = slidingRequests(s.hs);
    const queries = keyQueriesFor(s, bob.userId).slice(queriesBefore);
    expect(queries.length).toBeGreaterThanOrEqual(1);
    for (const query of queries) {
      const next = requests.find((r) => r.startOrder > query.startOrder);
      expect(next === undefined || endedBefore(query, next)).toBe(true);
    }

    await matrixCall(
      s.server.url,
      bob,
      "POST",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/leave`,
      {},
    );
    await waitUntil("Alice hears Bob left", () =>
      seen.of("sync.deviceListsChanged").some((c) => c.left.includes(bob.userId)),
    );
    expect(seen.of("sync.error")).toEqual([]);
    expectEncryptionRequests(requests);
  });

  it("finds a device added while the position was lost, which the new connection never reports", async () => {
    const s = await start(profile);
    const { alice, bob, client, seen } = await aliceWatchesBob(s);
    await client.sync.stop();
    const second = await bobAddsDevice(s, bob);
    // Alice's connection is forgotten meanwhile, as after 7 idle days (Synapse `CONNECTION_EXPIRY`).
    expect(s.hs.control.expireSlidingSyncConnections({ userId: alice.userId })).toBe(1);
    await inClient(client, "countMachineCalls", "markAllTrackedUsersAsDirty");
    const mark = seen.events.length;
    const logMark = s.hs.control.requestLog().length;

    await client.sync.start();
    await waitUntil(
      "Alice's machine knows Bob's new device and her loop long-polls again",
      async () =>
        (await knownDevices(client, bob.userId)).includes(second.deviceId) &&
        s.serverClock.pendingSleeps === 1,
    );

    const after = seen.events.slice(mark);
    expect(after.filter((e) => e.name === "sync.positionLost")).toHaveLength(1);
    // Nobody told Alice about Bob: only the re-query of every tracked user found his device.
    expect(
      after.some((e) => e.name === "sync.deviceListsChanged" && e.payload.changed.includes(bob.userId)),
    ).toBe(false);
    expect(await inClient(client, "machineCallCount", "markAllTrackedUsersAsDirty")).toBe(1);
    const log = s.hs.control.requestLog().slice(logMark);
    const refused = log.findIndex((e) => e.errcode === "M_UNKNOWN_POS");
    expect(refused).toBeGreaterThanOrEqual(0);
    const query = log.findIndex(
      (e, i) =>
        i > refused &&
        e.path === KEYS_QUERY_PATH &&
        Object.keys((e.body as { device_keys: object }).device_keys).includes(bob.userId),
    );
    const sliding = new Set(slidingRequests(s.hs).map((e) => e.seq));
    const fresh = log.findIndex((e, i) => i > refused && sliding.has(e.seq));
    expect(query).toBeGreaterThan(refused);
    expect(fresh).toBeGreaterThan(query);
    expect(posOf(log[fresh]!)).toBeUndefined();
    expect(await knownDevices(client, bob.userId)).toEqual([bob.deviceId, second.deviceId].sort());
    expectEncryptionRequests(slidingRequests(s.hs));
  });
});
