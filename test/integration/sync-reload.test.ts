import "fake-indexeddb/auto";
import { beforeAll, describe, expect } from "vitest";
import { clientInternals } from "../../src/client.js";
import type { CreateE2eeClientOptions } from "../../src/client-options.js";
import { loadCryptoWasm } from "../../src/crypto/load-wasm.js";
import { SyncPositionStore, type SyncPositions } from "../../src/sync/sync-position-store.js";
import type { ProfileName } from "../../src/testing/index.js";
import { inThreadClient, itInThread, type TestClient } from "./support/client-mode.js";
import { createAccount } from "./support/foundation-fixtures.js";
import {
  expectEncryptionRequests,
  olmSender,
  posOf,
  SyncRecorder,
  sendPlainToDevice,
  seqOf,
  sinceOf,
  slidingProfiles,
  slidingRequests,
  useSyncServers,
  waitUntil,
} from "./support/sync-fixtures.js";

/**
 * A reload in the middle of a stream of 1,000 to-device messages: Bob keeps sending (most in
 * clear, every twentieth Olm-encrypted by his own machine) while Alice's first client syncs; it is
 * closed while it handles the batch that brings it past 300, and a second client opens the same
 * crypto store and state store (fake-indexeddb stands in for a browser's IndexedDB, so both outlive
 * the first client) and goes on from the positions the first one saved. Every message must reach the app at least once across
 * the two, and each encrypted one decrypted: positions are saved only after the crypto layer
 * processed the response that moved them (the sliding-sync `pos`, and the `to_device` cursor,
 * which MSC3885 says the client MUST persist).
 */

beforeAll(() => loadCryptoWasm());

const TOTAL = 1_000;
const WAVE = 50;
const CLOSE_AFTER_WAVE = 7;
const REOPEN_AFTER_WAVE = 9;
const isEncrypted = (seq: number) => seq % 20 === 7;

const start = useSyncServers();

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe.each(slidingProfiles)(
  "a reload in the middle of 1,000 to-device messages on %s",
  (profile: ProfileName) => {
    itInThread(
      "two clients share a durable crypto store in fake-indexeddb, which exists in the test's thread only, and it reads the closed client's state store (clientInternals)",
    )("loses none: every message reaches the app at least once across both clients", async () => {
      const { server, hs, serverClock, open } = await start(profile);
      const alice = createAccount(server, "alice");
      const bob = createAccount(server, "bob");
      const stores: Partial<CreateE2eeClientOptions> = {
        cryptoStore: { name: `sync-reload-${profile}`, passphrase: "crypto store passphrase" },
        cryptoStoreDurability: "durable",
      };

      const first = await open(alice, stores);
      await first.processOutgoingRequests();
      const bobClient = await open(bob);
      await bobClient.processOutgoingRequests();
      const sendOlm = await olmSender(server.url, bobClient, bob, alice);
      const seenFirst = new SyncRecorder(first);
      // Closed from inside the app's handler of the batch that brings it to 300: the crypto call for
      // that batch is done, its positions are not saved yet, the next request is not sent.
      let closing: Promise<void> | undefined;
      first.events.on("sync.toDevice", () => {
        if (closing === undefined && new Set(seenFirst.seqs).size >= 300) closing = first.close();
      });
      await first.sync.start();

      let second: TestClient | undefined;
      let seenSecond: SyncRecorder | undefined;
      let saved: SyncPositions | undefined;
      let logMark = 0;
      for (let wave = 0; wave < TOTAL / WAVE; wave++) {
        const seqs = range(wave * WAVE, (wave + 1) * WAVE);
        await sendPlainToDevice(
          server.url,
          bob,
          alice,
          seqs.filter((seq) => !isEncrypted(seq)),
        );
        for (const seq of seqs.filter(isEncrypted)) await sendOlm(seq);
        if (wave === CLOSE_AFTER_WAVE) {
          await waitUntil("the first client has 300 messages and closes", () => closing !== undefined);
          await closing;
          // What the first client left in its state store (a closed client answers no calls).
          saved = await new SyncPositionStore({
            stateStore: clientInternals(inThreadClient(first)).stateStore,
            userId: alice.userId,
            deviceId: alice.deviceId,
            cryptoStoreDurability: "durable",
          }).load();
        }
        if (wave === REOPEN_AFTER_WAVE) {
          logMark = hs.control.requestLog().length;
          second = await open(alice, stores);
          seenSecond = new SyncRecorder(second);
          await second.sync.start();
        }
      }
      const both = () => new Set([...seenFirst.seqs, ...(seenSecond?.seqs ?? [])]);
      await waitUntil(
        "every message reached Alice and her loop long-polls",
        () => both().size === TOTAL && serverClock.pendingSleeps === 1,
        60_000,
      );

      expect([...both()].sort((a, b) => a - b)).toEqual(range(0, TOTAL));
      // Each Olm-encrypted message was decrypted by one of the two clients.
      const decrypted = [...seenFirst.toDevice, ...seenSecond!.toDevice]
        .filter((e) => e.kind === "decrypted")
        .map(seqOf);
      expect(new Set(decrypted)).toEqual(new Set(range(0, TOTAL).filter(isEncrypted)));
      expect(seenFirst.of("sync.error")).toEqual([]);
      expect(seenSecond!.of("sync.error")).toEqual([]);

      // The second client went on from the positions the first one saved, not from the start.
      expect(saved?.toDeviceSince).toBeDefined();
      const resumed = slidingRequests(hs).filter((r) => r.seq > logMark);
      expect([posOf(resumed[0]!), sinceOf(resumed[0]!)]).toEqual([saved!.pos, saved!.toDeviceSince]);
      expect(new Set(seenFirst.seqs).size).toBeGreaterThanOrEqual(300);
      expect(seenSecond!.seqs).not.toContain(0);
      // Both clients' loops acknowledged everything in the end.
      expect(hs.control.toDeviceInbox(alice.userId, alice.deviceId).events).toEqual([]);
      expectEncryptionRequests(slidingRequests(hs));
    });
  },
);
