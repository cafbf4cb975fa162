import { describe, expect, it } from "vitest";
import { signedDeviceKeys } from "../device-lists/support/device-keys.js";
import {
  createRemoteAccount,
  keyQueries,
  knownDevices,
  refreshRequests,
  useFederatedSetup,
} from "../device-lists/support/federation-fixtures.js";
import { inClient } from "./support/client-mode.js";
import { type Account, createAccount } from "./support/foundation-fixtures.js";
import { matrixCall } from "./support/sync-fixtures.js";

/**
 * Counted, not timed, over a real socket: what many asks and many users cost in requests. Every
 * count is read from the mock's request log.
 */

const setup = useFederatedSetup();

async function publishKeys(baseUrl: string, accounts: readonly Account[], parallel = 16): Promise<void> {
  for (let i = 0; i < accounts.length; i += parallel) {
    await Promise.all(
      accounts.slice(i, i + parallel).map((a) =>
        matrixCall(baseUrl, a, "POST", "/_matrix/client/v3/keys/upload", {
          device_keys: signedDeviceKeys(a.userId, a.deviceId),
        }),
      ),
    );
  }
}

describe("device-list resyncs, counted", () => {
  it("10,000 asks for 100 remote users in one rate window send exactly 100 MSC2638 refreshes; all end fresh", async () => {
    const s = await setup.start("msc");
    const control = s.server.homeserver.control;
    const alice = createAccount(s.server, "alice");
    const users = Array.from({ length: 100 }, (_, i) => createRemoteAccount(s.server, `remote${i}`));
    const created = await matrixCall(s.server.url, alice, "POST", "/_matrix/client/v3/createRoom", {
      preset: "private_chat",
      invite: users.map((u) => u.userId),
    });
    const roomId = String(created.room_id);
    for (const user of users) {
      await matrixCall(
        s.server.url,
        user,
        "POST",
        `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`,
        {},
      );
    }
    const aliceClient = await s.open(alice);
    await aliceClient.processOutgoingRequests();
    // Alice's server caches each list (no keys yet) as she starts following them ...
    await aliceClient.rooms.updateRoom(roomId, {
      members: Object.fromEntries([alice, ...users].map((u) => [u.userId, "join"])),
    });
    await aliceClient.sync.start({ pollTimeoutMs: 200 });
    // ... and each user's device then publishes keys while their updates are lost.
    for (const user of users) control.loseDeviceListUpdates(user.userId, true);
    await publishKeys(s.server.url, users);
    expect(users.every((u) => control.remoteCache(u.userId).stale)).toBe(true);

    const ids = users.map((u) => u.userId);
    const asks = Array.from({ length: 10_000 }, (_, i) =>
      aliceClient.deviceLists.requestResync([ids[i % 100] as string]),
    );
    const answers = await Promise.all(asks);

    const refreshes = refreshRequests(s.server, alice.userId);
    expect(refreshes).toHaveLength(100);
    expect(new Set(refreshes.map((r) => r.path)).size).toBe(100);
    expect(answers.every(([t]) => t?.state === "fresh" && t.cleared === "server_and_client")).toBe(true);
    expect(await aliceClient.deviceLists.trustAll()).toHaveLength(100);
    for (const user of users) {
      expect(await knownDevices(aliceClient, user.userId)).toEqual([user.deviceId]);
    }
  });

  it("MSC2638 refreshes of 1,000 remote users whose lists had not changed all arrive, each queried once", async () => {
    const s = await setup.start("msc");
    const alice = createAccount(s.server, "alice");
    const users = Array.from({ length: 1000 }, (_, i) => createRemoteAccount(s.server, `remote${i}`));
    await publishKeys(s.server.url, users);
    const created = await matrixCall(s.server.url, alice, "POST", "/_matrix/client/v3/createRoom", {
      preset: "private_chat",
      invite: users.map((u) => u.userId),
    });
    const roomId = String(created.room_id);
    for (let i = 0; i < users.length; i += 16) {
      await Promise.all(
        users
          .slice(i, i + 16)
          .map((u) =>
            matrixCall(s.server.url, u, "POST", `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {}),
          ),
      );
    }
    const aliceClient = await s.open(alice);
    await inClient(
      aliceClient,
      "trackUsers",
      users.map((u) => u.userId),
    );
    await aliceClient.processOutgoingRequests();
    await aliceClient.sync.start({ pollTimeoutMs: 200 });

    const before = keyQueries(s.server, alice.userId).length;
    const trusts = await aliceClient.deviceLists.requestResync(users.map((u) => u.userId));
    const queries = keyQueries(s.server, alice.userId).slice(before);
    const asked = queries.flatMap((q) => Object.keys((q.body as { device_keys: object }).device_keys));
    const counts = new Map<string, number>();
    for (const u of asked) counts.set(u, (counts.get(u) ?? 0) + 1);

    expect(refreshRequests(s.server, alice.userId)).toHaveLength(1000);
    // Each arrived (a refresh left unrelayed would end client_only after its 30 s wait) ...
    expect(trusts.every((t) => t.state === "fresh" && t.cleared === "server_and_client")).toBe(true);
    // ... and was queried exactly once, by the crypto layer after the sync response that announced
    // it: the SDK re-queried nobody. (How many requests that takes is how the server spread the
    // announcements over sync responses.)
    expect(counts.size).toBe(1000);
    expect(asked).toHaveLength(1000);
  });

  it("1,000 changed users are re-queried in at most ⌈1000/250⌉ + 1 key queries, every device known after", async () => {
    const s = await setup.start("synapse-1.157");
    const alice = createAccount(s.server, "alice");
    const users = Array.from({ length: 1000 }, (_, i) => createAccount(s.server, `user${i}`));
    const aliceClient = await s.open(alice);
    await aliceClient.processOutgoingRequests();
    // Alice follows them while none has keys; they share no room with her, so no sync tells her
    // when each publishes its device: her copy of every list is stale.
    await inClient(
      aliceClient,
      "trackUsers",
      users.map((u) => u.userId),
    );
    await aliceClient.processOutgoingRequests();
    await publishKeys(s.server.url, users);
    expect(await knownDevices(aliceClient, users[0]?.userId as string)).toEqual([]);

    const before = keyQueries(s.server, alice.userId).length;
    const trusts = await aliceClient.deviceLists.requestResync(users.map((u) => u.userId));
    const queries = keyQueries(s.server, alice.userId).slice(before);

    expect(queries.length).toBeLessThanOrEqual(Math.ceil(1000 / 250) + 1);
    const asked = queries.flatMap((q) => Object.keys((q.body as { device_keys: object }).device_keys));
    expect(new Set(asked).size).toBeGreaterThanOrEqual(1000);
    expect(trusts.every((t) => t.state === "fresh" && t.cleared === "client_only")).toBe(true);
    for (const user of users) {
      expect(await knownDevices(aliceClient, user.userId)).toEqual([user.deviceId]);
    }
  });
});
