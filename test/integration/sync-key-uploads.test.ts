import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { E2eeClient } from "../../src/client.js";
import type { CreateE2eeClientOptions } from "../../src/client-options.js";
import { loadCryptoWasm } from "../../src/crypto/load-wasm.js";
import { SLIDING_SYNC_PATH } from "../../src/sync/sync-loops.js";
import {
  currentSyncPosition,
  formatSyncToken,
  ManualClock,
  type ProfileName,
  type RunningMockServer,
  startMockServer,
} from "../../src/testing/index.js";
import { type Account, createAccount, LeakWatch, openClient } from "./support/foundation-fixtures.js";
import {
  allProfiles,
  classicRequests,
  expectEncryptionRequests,
  keysUploads,
  modelKeyUploads,
  type RecordedSync,
  recordingFetch,
  SyncRecorder,
  scriptClassic,
  scriptSliding,
  sendPlainToDevice,
  seededRandom,
  seqEvent,
  slidingProfiles,
  slidingRequests,
  waitUntil,
} from "./support/sync-fixtures.js";

/**
 * One-time and fallback keys over 100 sync responses of every shape a server sends — counts low,
 * high, zero, omitted, `null`, a map without `signed_curve25519`; fallback types `[]`, full,
 * omitted, `null`; no `e2ee`, no `extensions` — scripted on the mock over a real socket, then the
 * real route of each profile. The number of `keys/upload` requests the mock saw must be what
 * crypto-wasm's rules predict for exactly the bodies the client was answered with
 * (`modelKeyUploads`): the expectation is derived from the sequence, never written down.
 */

beforeAll(() => loadCryptoWasm());

interface Setup {
  server: RunningMockServer;
  serverClock: ManualClock;
  watch: LeakWatch;
  clients: E2eeClient[];
}

let setup: Setup | undefined;

beforeEach(async () => {
  const serverClock = new ManualClock();
  setup = { server: undefined as never, serverClock, watch: new LeakWatch(), clients: [] };
  // Each test names its profile; the server is started there.
});

afterEach(async () => {
  const ended = setup;
  setup = undefined;
  if (ended === undefined) return;
  try {
    await Promise.all(ended.clients.map((c) => c.close()));
  } finally {
    await ended.server?.close();
  }
  ended.watch.expectNoLeaks();
});

async function start(profile: ProfileName): Promise<Setup> {
  const s = setup!;
  // The server's clock never moves: a long-poll with a `pos` waits until something happens.
  s.server = await startMockServer({ profile, clock: s.serverClock });
  return s;
}

async function open(s: Setup, account: Account, options: Partial<CreateE2eeClientOptions>): Promise<E2eeClient> {
  const client = await openClient(s.server, account, s.watch, { clock: new ManualClock(), random: () => 0.5, ...options });
  s.clients.push(client);
  return client;
}

const COUNTS = [0, 1, 10, 25, 49, 50, 51, 75, 100];
const pick = <T>(random: () => number, options: readonly T[]): T => options[Math.floor(random() * options.length)]!;

/** The e2ee fields of one response, each in one of its wire forms (`undefined`: left out). */
function e2eeFields(random: () => number): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  const count = pick(random, ["omit", "omit", "null", "empty", "value", "value", "value", "with-other"]);
  if (count === "null") fields.device_one_time_keys_count = null;
  if (count === "empty") fields.device_one_time_keys_count = {};
  if (count === "value") fields.device_one_time_keys_count = { signed_curve25519: pick(random, COUNTS) };
  if (count === "with-other") {
    fields.device_one_time_keys_count = { signed_curve25519: pick(random, COUNTS), curve25519: 3 };
  }
  const fallback = pick(random, ["omit", "omit", "omit", "null", "used", "unused"]);
  if (fallback === "null") fields.device_unused_fallback_key_types = null;
  if (fallback === "used") fields.device_unused_fallback_key_types = [];
  if (fallback === "unused") fields.device_unused_fallback_key_types = ["signed_curve25519"];
  if (random() < 0.2) fields.device_lists = { changed: ["@carol:localhost"], left: [] };
  return fields;
}

/**
 * Sliding-sync bodies. `next_batch` stays "0": a cursor ahead of the real stream would make
 * Synapse answer nothing until the stream caught up (`since` from the future echoes back).
 */
function slidingBodies(n: number, sender: string): Record<string, unknown>[] {
  const random = seededRandom(4186);
  return Array.from({ length: n }, (_, i) => {
    const pos = String(900_000 + i);
    const shape = pick(random, ["none", "empty", "null-e2ee", "e2ee", "e2ee", "e2ee", "e2ee", "e2ee"]);
    if (shape === "none") return { pos };
    const extensions: Record<string, unknown> = {};
    if (shape === "null-e2ee") extensions.e2ee = null;
    if (shape === "e2ee") extensions.e2ee = e2eeFields(random);
    const toDevice = pick(random, ["omit", "empty", "event"]);
    if (toDevice === "empty") extensions.to_device = { next_batch: "0" };
    if (toDevice === "event") extensions.to_device = { next_batch: "0", events: [seqEvent(sender, i)] };
    return { pos, extensions };
  });
}

/** Classic `/sync` bodies, the e2ee fields at the top level; `next_batch` a token the real route accepts. */
function classicBodies(n: number, nextBatch: string, sender: string): Record<string, unknown>[] {
  const random = seededRandom(3884);
  return Array.from({ length: n }, (_, i) => {
    const body: Record<string, unknown> = { next_batch: nextBatch, ...e2eeFields(random) };
    if (random() < 0.3) body.to_device = { events: [seqEvent(sender, i)] };
    return body;
  });
}

/** What the scripted sequence holds, so a seed that stopped exercising a rule is noticed. */
function coverage(bodies: readonly Record<string, unknown>[], mode: "sliding" | "classic") {
  const e2ee = bodies.map((b) =>
    mode === "classic" ? b : ((b.extensions as Record<string, unknown> | undefined)?.e2ee as Record<string, unknown> | null),
  );
  const count = (e: Record<string, unknown> | null | undefined) =>
    (e?.device_one_time_keys_count as Record<string, number> | null | undefined)?.signed_curve25519;
  return {
    low: e2ee.filter((e) => (count(e) ?? 50) < 50).length,
    high: e2ee.filter((e) => (count(e) ?? 0) >= 50).length,
    omitted: e2ee.filter((e) => count(e) === undefined).length,
    sets: e2ee.filter((e) => Array.isArray(e?.device_unused_fallback_key_types)).length,
  };
}

describe.each(slidingProfiles)("one-time and fallback keys over sliding sync on %s", (profile) => {
  it("uploads exactly as crypto-wasm's rules predict over 100 scripted responses and the real route", async () => {
    const s = await start(profile);
    const hs = s.server.homeserver;
    const alice = createAccount(s.server, "alice");
    const bob = createAccount(s.server, "bob");
    const recorded: RecordedSync[] = [];
    const client = await open(s, alice, { fetch: recordingFetch(recorded) });
    await client.processOutgoingRequests();
    // The first upload (device keys, 50 one-time keys, no fallback key) is the client's, not the loop's.
    const first = keysUploads(hs, alice.userId);
    expect(first).toHaveLength(1);
    expect(first[0]!.body).not.toHaveProperty("fallback_keys");

    const bodies = slidingBodies(100, bob.userId);
    const scripted = coverage(bodies, "sliding");
    expect(scripted.low).toBeGreaterThanOrEqual(10);
    expect(scripted.high).toBeGreaterThanOrEqual(10);
    expect(scripted.omitted).toBeGreaterThanOrEqual(10);
    expect(scripted.sets).toBeGreaterThanOrEqual(3);
    for (const body of bodies) scriptSliding(hs, body);
    // Then the scripted `pos` is refused: the loop starts over on the profile's real route.
    hs.control.scriptFailure({ method: "POST", path: SLIDING_SYNC_PATH, status: 400, errcode: "M_UNKNOWN_POS" });
    const crypto = vi.spyOn(client.olmMachine, "receiveSyncChangesMsc4186");
    const seen = new SyncRecorder(client);
    await client.sync.start();
    await waitUntil("the loop long-polls on the real route", () => s.serverClock.pendingSleeps === 1);
    // A message wakes it: one more real response.
    await sendPlainToDevice(s.server.url, bob, alice, [1_000]);
    await waitUntil(
      "the message is processed and the loop long-polls again",
      () => seen.seqs.includes(1_000) && s.serverClock.pendingSleeps === 1,
    );

    expect(recorded.slice(0, 100).map((r) => r.body)).toEqual(bodies);
    expect(recorded.length).toBeGreaterThanOrEqual(102);
    expect(crypto).toHaveBeenCalledTimes(recorded.length);
    expect(seen.of("sync.error")).toEqual([]);
    expect(seen.of("sync.positionLost")).toHaveLength(1);

    const model = modelKeyUploads(recorded);
    expect(model.fallbackKeyUploads).toBe(1);
    expect(keysUploads(hs, alice.userId).length - 1).toBe(model.uploads);
    // Every upload went out before the next sync request, and each top-up reached 50 exactly.
    const uploads = keysUploads(hs, alice.userId).slice(1);
    expect(uploads.every((u) => u.status === 200)).toBe(true);
    expectEncryptionRequests(slidingRequests(hs));
  });
});

describe.each(allProfiles)("one-time and fallback keys over classic /sync on %s", (profile) => {
  it("uploads exactly as crypto-wasm's rules predict over 100 scripted responses and the real route", async () => {
    const s = await start(profile);
    const hs = s.server.homeserver;
    const alice = createAccount(s.server, "alice");
    const bob = createAccount(s.server, "bob");
    const recorded: RecordedSync[] = [];
    const client = await open(s, alice, { fetch: recordingFetch(recorded) });
    await client.processOutgoingRequests();
    expect(keysUploads(hs, alice.userId)).toHaveLength(1);

    const token = formatSyncToken(currentSyncPosition(hs.state));
    const bodies = classicBodies(100, token, bob.userId);
    const scripted = coverage(bodies, "classic");
    expect(scripted.omitted).toBeGreaterThanOrEqual(10);
    expect(scripted.high).toBeGreaterThanOrEqual(10);
    expect(scripted.sets).toBeGreaterThanOrEqual(3);
    for (const body of bodies) scriptClassic(hs, body);
    const crypto = vi.spyOn(client.olmMachine, "receiveSyncChanges");
    const seen = new SyncRecorder(client);
    await client.sync.start({ mode: "classic" });
    await waitUntil("the loop long-polls on the real route", () => s.serverClock.pendingSleeps === 1);
    await sendPlainToDevice(s.server.url, bob, alice, [1_000]);
    await waitUntil(
      "the message is processed and the loop long-polls again",
      () => seen.seqs.includes(1_000) && s.serverClock.pendingSleeps === 1,
    );

    expect(recorded.slice(0, 100).map((r) => r.body)).toEqual(bodies);
    expect(recorded.length).toBeGreaterThanOrEqual(101);
    expect(crypto).toHaveBeenCalledTimes(recorded.length);
    expect(seen.of("sync.error")).toEqual([]);

    const model = modelKeyUploads(recorded);
    // Classic reads every missing count as zero: at least one top-up per omission.
    expect(model.oneTimeKeyUploads).toBeGreaterThanOrEqual(scripted.omitted);
    expect(keysUploads(hs, alice.userId).length - 1).toBe(model.uploads);
    expect(keysUploads(hs, alice.userId).every((u) => u.status === 200)).toBe(true);
    const requests = classicRequests(hs);
    expect(requests.slice(1).every((r) => new URLSearchParams(r.query).get("since") !== null)).toBe(true);
  });
});
