import "fake-indexeddb/auto";
import { initAsync } from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProfileName, type RunningMockServer, startMockServer } from "../../src/testing/index.js";
import { profiles as profileFlags } from "../../src/testing/profiles.js";
import type { DehydratedEventsFaultSpec } from "../../src/testing/state/dehydrated-device-store.js";
import { inClient, type TestClient } from "./support/client-mode.js";
import {
  aliceWithDehydratedDevice,
  bobSharesRoomKeys,
  decryptable,
  eventsRequests,
  newLogin,
} from "./support/dehydration-drain-fixtures.js";
import { LeakWatch } from "./support/foundation-fixtures.js";

/**
 * A server whose paging misbehaves and later recovers, on every profile, over a real socket with
 * real crypto-wasm: the drain is cut off by a loop guard and keeps the device; every cursor the
 * misbehaving server handed out is distrusted; once the server behaves, the next drain and the
 * rotation import every room key, and the device is replaced only then (MSC3814: a client may
 * replace the device once it has retrieved its messages, and the replacement deletes them).
 */

/** Enough for several pages everywhere; tuwunel ignores `limit` and serves 50 events a page. */
const roomsOn = (profile: ProfileName) => (profile === "tuwunel" ? 70 : 30);
const profiles: ProfileName[] = ["synapse-1.157", "synapse-1.156", "tuwunel", "msc"];

interface Shape {
  name: string;
  fault: Omit<DehydratedEventsFaultSpec, "userId">;
  /** Which loop guard cuts the drain off. */
  reason: string;
  /** Whether the shape can be told from an honest server on a POST-only profile (see below). */
  onPost: boolean;
}

const shapes: Shape[] = [
  // GET only: on MSC3814's POST form an empty page *is* the end marker, so a server that answers
  // an empty page while it holds messages cannot be told from an empty inbox (see the note in
  // docs/dehydration.md).
  {
    name: "endless empty pages",
    fault: { kind: "never-ends", afterPages: 1 },
    reason: "empty_pages",
    onPost: false,
  },
  {
    name: "pages of filler whose cursors skip past real messages",
    fault: { kind: "never-ends", afterPages: 1, eventsPerPage: 40 },
    reason: "event_cap",
    onPost: true,
  },
  {
    name: "a repeated cursor",
    fault: { kind: "repeat-cursor", afterPages: 1 },
    reason: "repeated_cursor",
    onPost: true,
  },
];

beforeAll(async () => {
  await initAsync();
});

const watch = new LeakWatch();

describe.each(profiles)("a server that misbehaves and recovers, on %s", (profile) => {
  let server: RunningMockServer;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    server = await startMockServer({ profile });
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  const speaksGet = profileFlags[profile].dehydratedEventsGet;
  const ROOMS = roomsOn(profile);
  for (const shape of shapes.filter((s) => s.onPost || speaksGet)) {
    it(`loses no room key to ${shape.name}`, async () => {
      const control = server.homeserver.control;
      const local = `alice-${shapes.indexOf(shape)}`;
      const alice = await aliceWithDehydratedDevice(server, local, watch);
      const messages = await bobSharesRoomKeys(server, alice.userId, ROOMS, `bob-${local}`, watch);
      const { client, secretStorageKey } = await newLogin(server, alice, {
        watch,
        // Small pages, so the fault starts after one real page of several; a low event cap, so the
        // filler trips the guard after a few pages rather than 100,000 events.
        dehydration: { drain: { targetPageBytes: 20_000, limits: { maxEvents: 200, maxEmptyPages: 5 } } },
      });
      clients.push(client);
      await inClient(client, "setRoomKeyRequests", false);

      control.setDehydratedEventsFault({ ...shape.fault, userId: alice.userId });
      const cut = await client.dehydration.drain({ secretStorageKey });
      expect(cut).toMatchObject({ outcome: "truncated", reason: shape.reason, cursor: undefined });
      // Retried while the server still misbehaves: still cut off, still from the trusted start,
      // and the rotation keeps the device.
      const again = await client.dehydration.drain({ secretStorageKey });
      expect(again).toMatchObject({ outcome: "truncated", resumedFrom: undefined });
      const kept = await client.dehydration.start({ secretStorageKey });
      expect(kept).toMatchObject({ action: "kept", deviceId: alice.dehydratedDeviceId });
      await client.dehydration.stop();
      expect(control.dehydratedDevice(alice.userId)?.deviceId).toBe(alice.dehydratedDeviceId);

      // The server recovers. The next drain reads every message from the trusted start.
      control.clearDehydratedEventsFault();
      const recovered = await client.dehydration.drain({ secretStorageKey });
      expect(recovered).toMatchObject({ outcome: "completed", resumedFrom: undefined });
      expect(await decryptable(client, messages)).toBe(ROOMS);
      if (recovered.outcome !== "completed") throw new Error("not completed");
      expect(new Set(recovered.importedKeys.map((k) => k.roomId)).size).toBe(ROOMS);

      // Only now does the rotation replace the device: its drain re-reads just the last page, and
      // imports nothing (its events are the known head of the completed drain's end position).
      const imported: number[] = [];
      const off = client.events.on("dehydration.drain.completed", (c) => imported.push(c.run.roomKeys));
      const requestsBefore = eventsRequests(server, alice.dehydratedDeviceId).length;
      const replaced = await client.dehydration.start({ secretStorageKey });
      expect(replaced).toMatchObject({ action: "replaced", previousDeviceId: alice.dehydratedDeviceId });
      off();
      expect(imported).toEqual([0]);
      expect(eventsRequests(server, alice.dehydratedDeviceId).length - requestsBefore).toBe(1);
      await client.dehydration.stop();
      expect(control.dehydratedDevice(alice.userId)?.deviceId).not.toBe(alice.dehydratedDeviceId);
    });
  }

  if (!speaksGet)
    it("takes an empty POST page for the end, as MSC3814's POST form defines it", async () => {
      const control = server.homeserver.control;
      const alice = await aliceWithDehydratedDevice(server, "alice-post-end", watch);
      await bobSharesRoomKeys(server, alice.userId, 3, "bob-post-end", watch);
      const { client, secretStorageKey } = await newLogin(server, alice, { watch });
      clients.push(client);
      await inClient(client, "setRoomKeyRequests", false);
      control.setDehydratedEventsFault({ kind: "never-ends", userId: alice.userId, afterPages: 0 });
      try {
        // The limit this SDK cannot lift: nothing on the wire tells this page from an empty inbox.
        expect(await client.dehydration.drain({ secretStorageKey })).toMatchObject({
          outcome: "completed",
          endReason: "empty_page",
          totals: { roomKeys: 0 },
        });
      } finally {
        control.clearDehydratedEventsFault();
      }
    });
});

describe("secrets", () => {
  it("leak into no log, error or event of these drains", () => {
    watch.expectNoLeaks();
  });
});
