import { describe, expect, it } from "vitest";
import type { ProfileName } from "../../src/testing/index.js";
import { inClient } from "./support/client-mode.js";
import {
  expectEncryptionRequests,
  posOf,
  sendPlainToDevice,
  sinceOf,
  slidingProfiles,
  slidingRequests,
  waitUntil,
} from "./support/sync-fixtures.js";
import { range, storedPositions, storePositions, useAliceAndBob } from "./support/to-device-stream.js";

/**
 * A lost sliding-sync position in the middle of a to-device stream, on every profile: the server
 * expires the connection while the loop long-polls (as Synapse does after 7 idle days,
 * `handlers/sliding_sync/room_lists.py`), the next answer is `M_UNKNOWN_POS`, and the loop starts
 * a new connection with the `to_device.since` it had — the to-device cursor belongs to the device,
 * not the connection (MSC3885; Synapse `deviceinbox.py`) — so every message arrives, none twice.
 */

const start = useAliceAndBob();

describe.each(slidingProfiles)(
  "M_UNKNOWN_POS in the middle of a to-device stream on %s",
  (profile: ProfileName) => {
    it("recovers on a new connection with the to-device since intact and loses nothing", async () => {
      const { server, hs, serverClock, alice, bob, client, seen } = await start(profile);
      await client.sync.start();
      await sendPlainToDevice(server.url, bob, alice, range(0, 30));
      await waitUntil(
        "Alice has the first 30 and long-polls",
        () => new Set(seen.seqs).size === 30 && serverClock.pendingSleeps === 1,
      );
      const before = (await client.sync.status()).positions;
      expect(before.toDeviceSince).toBeDefined();
      await inClient(client, "countMachineCalls", "markAllTrackedUsersAsDirty");

      expect(
        hs.control.expireSlidingSyncConnections({ userId: alice.userId, deviceId: alice.deviceId }),
      ).toBe(1);
      // The first of these wakes the parked request, whose position is gone by then.
      await sendPlainToDevice(server.url, bob, alice, range(30, 60));
      await waitUntil(
        "Alice has all 60 and long-polls again",
        () => new Set(seen.seqs).size === 60 && serverClock.pendingSleeps === 1,
      );

      expect([...new Set(seen.seqs)].sort((a, b) => a - b)).toEqual(range(0, 60));
      // Nothing twice either: the kept cursor acknowledged exactly what had been delivered.
      expect(seen.seqs).toHaveLength(60);
      expect(seen.of("sync.positionLost")).toEqual([{ mode: "sliding" }]);
      expect(seen.of("sync.error")).toEqual([]);
      expect(await inClient(client, "machineCallCount", "markAllTrackedUsersAsDirty")).toBe(1);

      const requests = slidingRequests(hs);
      const refused = requests.findIndex((r) => r.errcode === "M_UNKNOWN_POS");
      expect(refused).toBeGreaterThan(0);
      expect(requests.filter((r) => r.errcode === "M_UNKNOWN_POS")).toHaveLength(1);
      const lost = requests[refused]!;
      const fresh = requests[refused + 1]!;
      expect([posOf(lost), sinceOf(lost)]).toEqual([before.pos, before.toDeviceSince]);
      expect(posOf(fresh)).toBeUndefined();
      expect(sinceOf(fresh)).toBe(before.toDeviceSince);
      // Once a cursor was handed out, every later request carried one.
      const firstSince = requests.findIndex((r) => sinceOf(r) !== undefined);
      expect(requests.slice(firstSince).every((r) => sinceOf(r) !== undefined)).toBe(true);
      // The parked request acknowledged the last batch: nothing waits on the server.
      expect(hs.control.toDeviceInbox(alice.userId, alice.deviceId).events).toEqual([]);
      expectEncryptionRequests(requests);
    });

    it("takes 400 M_UNKNOWN to a stored pos the server cannot parse as a lost position, not as trouble to retry", async () => {
      const { server, hs, serverClock, alice, bob, client, seen } = await start(profile);
      await client.sync.start();
      await sendPlainToDevice(server.url, bob, alice, range(0, 5));
      await waitUntil(
        "Alice has the first 5 and long-polls",
        () => seen.seqs.length === 5 && serverClock.pendingSleeps === 1,
      );
      await client.sync.stop();

      // What an earlier version left behind: the app's connection's pos, in a form this server
      // does not hand out (Synapse: 400 `M_UNKNOWN` "Invalid stream token", on every retry).
      const saved = await storedPositions(client);
      expect(saved.toDeviceSince).toBeDefined();
      await storePositions(client, { ...saved, pos: "s72594_4483_1934" });
      hs.control.clearRequestLog();
      await sendPlainToDevice(server.url, bob, alice, range(5, 10));
      await client.sync.start();
      await waitUntil(
        "Alice has all 10 and long-polls again",
        () => seen.seqs.length === 10 && serverClock.pendingSleeps === 1,
        10_000,
      );

      const requests = slidingRequests(hs);
      expect(requests[0]).toMatchObject({ status: 400, errcode: "M_UNKNOWN" });
      expect(posOf(requests[0]!)).toBe("s72594_4483_1934");
      // A new connection, from the device's to-device cursor.
      expect([posOf(requests[1]!), sinceOf(requests[1]!)]).toEqual([undefined, saved.toDeviceSince]);
      expect(seen.of("sync.positionLost")).toEqual([{ mode: "sliding" }]);
      expect(seen.of("sync.error")).toEqual([]);
      expect(seen.seqs).toEqual(range(0, 10));
      expectEncryptionRequests(requests);
    });
  },
);
