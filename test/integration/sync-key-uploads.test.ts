import { beforeAll, describe, expect, vi } from "vitest";
import { loadCryptoWasm } from "../../src/crypto/load-wasm.js";
import { SLIDING_SYNC_PATH } from "../../src/sync/sync-loops.js";
import { currentSyncPosition, formatSyncToken, profiles } from "../../src/testing/index.js";
import { inThreadClient, itInThread } from "./support/client-mode.js";
import { createAccount } from "./support/foundation-fixtures.js";
import {
  allProfiles,
  classicRequests,
  countQueries,
  expectEncryptionRequests,
  keysUploads,
  matrixCall,
  modelKeyUploads,
  type RecordedSync,
  recordingFetch,
  SyncRecorder,
  scriptClassic,
  scriptSliding,
  seededRandom,
  sendPlainToDevice,
  seqEvent,
  slidingProfiles,
  slidingRequests,
  uploadShape,
  uploadsPerResponse,
  useSyncServers,
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

const start = useSyncServers();

const pick = <T>(random: () => number, options: readonly T[]): T =>
  options[Math.floor(random() * options.length)]!;

type CountForm = "omit" | "null" | "empty" | "value" | "with-other";

/**
 * How often each form of the count appears, and its values. Classic `/sync` reads every absent
 * count as zero (a top-up of 50 keys each time), and crypto-wasm gets slower as unclaimed keys pile
 * up in its account, so the classic sequence leaves the count out less often and runs shallower.
 */
const countShapes: Record<"sliding" | "classic", { forms: CountForm[]; values: number[] }> = {
  sliding: {
    forms: ["omit", "omit", "null", "empty", "value", "value", "value", "with-other"],
    values: [0, 1, 10, 25, 49, 50, 51, 75, 100],
  },
  classic: {
    forms: ["omit", "null", "empty", ...Array<CountForm>(9).fill("value"), "with-other", "with-other"],
    values: [40, 45, 49, 50, 51, 75, 100],
  },
};

/** The e2ee fields of one response, each in one of its wire forms (`undefined`: left out). */
function e2eeFields(random: () => number, mode: "sliding" | "classic"): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  const { forms, values } = countShapes[mode];
  const count = pick(random, forms);
  if (count === "null") fields.device_one_time_keys_count = null;
  if (count === "empty") fields.device_one_time_keys_count = {};
  if (count === "value") fields.device_one_time_keys_count = { signed_curve25519: pick(random, values) };
  if (count === "with-other") {
    fields.device_one_time_keys_count = { signed_curve25519: pick(random, values), curve25519: 3 };
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
    if (shape === "e2ee") extensions.e2ee = e2eeFields(random, "sliding");
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
    const body: Record<string, unknown> = { next_batch: nextBatch, ...e2eeFields(random, "classic") };
    if (random() < 0.3) body.to_device = { events: [seqEvent(sender, i)] };
    return body;
  });
}

/** What the scripted sequence holds, so a seed that stopped exercising a rule is noticed. */
function coverage(bodies: readonly Record<string, unknown>[], mode: "sliding" | "classic") {
  const e2ee = bodies.map((b) =>
    mode === "classic"
      ? b
      : ((b.extensions as Record<string, unknown> | undefined)?.e2ee as Record<string, unknown> | null),
  );
  // A present map without signed_curve25519 says zero; only a missing map is "unchanged".
  const count = (e: Record<string, unknown> | null | undefined) => {
    const map = e?.device_one_time_keys_count as Record<string, number> | null | undefined;
    return map === null || map === undefined ? undefined : (map.signed_curve25519 ?? 0);
  };
  return {
    low: e2ee.filter((e) => (count(e) ?? 50) < 50).length,
    high: e2ee.filter((e) => (count(e) ?? 0) >= 50).length,
    omitted: e2ee.filter((e) => count(e) === undefined).length,
    sets: e2ee.filter((e) => Array.isArray(e?.device_unused_fallback_key_types)).length,
  };
}

/** Why these run in-thread only. */
const RECORDS =
  "reads the sync bodies through its own fetch (recordingFetch) and spies on the client's machine (vi.spyOn)";

describe.each(slidingProfiles)("one-time and fallback keys over sliding sync on %s", (profile) => {
  itInThread(RECORDS)(
    "uploads exactly as crypto-wasm's rules predict over 100 scripted responses and the real route",
    async () => {
      const s = await start(profile);
      const { hs } = s;
      const alice = createAccount(s.server, "alice");
      const bob = createAccount(s.server, "bob");
      const recorded: RecordedSync[] = [];
      const client = inThreadClient(await s.open(alice, { fetch: recordingFetch(recorded) }));
      await client.processOutgoingRequests();
      // The first upload (device keys, 50 one-time keys, no fallback key) is the client's, not the loop's.
      const first = keysUploads(hs, alice.userId);
      expect(first.map(uploadShape)).toEqual([{ oneTimeKeys: 50, fallbackKeys: 0 }]);

      const bodies = slidingBodies(100, bob.userId);
      const scripted = coverage(bodies, "sliding");
      expect(scripted.low).toBeGreaterThanOrEqual(10);
      expect(scripted.high).toBeGreaterThanOrEqual(10);
      expect(scripted.omitted).toBeGreaterThanOrEqual(10);
      expect(scripted.sets).toBeGreaterThanOrEqual(3);
      for (const body of bodies) scriptSliding(hs, body);
      // Then the scripted `pos` is refused: the loop starts over on the profile's real route.
      hs.control.scriptFailure({
        method: "POST",
        path: SLIDING_SYNC_PATH,
        status: 400,
        errcode: "M_UNKNOWN_POS",
      });
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
      const uploads = keysUploads(hs, alice.userId).slice(1);
      expect(uploads).toHaveLength(model.uploads);
      expect(uploads.every((u) => u.status === 200)).toBe(true);
      // Response by response: the upload it led to, before the next request, with 50 − count keys.
      expect(uploadsPerResponse(slidingRequests(hs), uploads)).toEqual(model.steps);
      expectEncryptionRequests(slidingRequests(hs));
    },
  );
});

describe.each(allProfiles)("one-time and fallback keys over classic /sync on %s", (profile) => {
  itInThread(RECORDS)(
    "uploads exactly as crypto-wasm's rules predict over 100 scripted responses and the real route",
    async () => {
      const s = await start(profile);
      const { hs } = s;
      const alice = createAccount(s.server, "alice");
      const bob = createAccount(s.server, "bob");
      const recorded: RecordedSync[] = [];
      const client = inThreadClient(await s.open(alice, { fetch: recordingFetch(recorded) }));
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
      const uploads = keysUploads(hs, alice.userId).slice(1);
      expect(uploads).toHaveLength(model.uploads);
      expect(uploads.every((u) => u.status === 200)).toBe(true);
      const requests = classicRequests(hs);
      expect(uploadsPerResponse(requests, uploads)).toEqual(model.steps);
      expect(requests.slice(1).every((r) => new URLSearchParams(r.query).get("since") !== null)).toBe(true);
    },
  );
});

describe.each(slidingProfiles)("one-time keys other users claimed, on %s", (profile) => {
  itInThread(RECORDS)("are topped up once the server reports the drained count", async () => {
    const s = await start(profile);
    const { hs } = s;
    const alice = createAccount(s.server, "alice");
    const bob = createAccount(s.server, "bob");
    const recorded: RecordedSync[] = [];
    const client = inThreadClient(await s.open(alice, { fetch: recordingFetch(recorded) }));
    await client.processOutgoingRequests();
    const seen = new SyncRecorder(client);
    await client.sync.start();
    await waitUntil("the loop long-polls", () => s.serverClock.pendingSleeps === 1);
    expect(hs.state.keys.oneTimeKeyCounts(alice.userId, alice.deviceId)).toEqual({ signed_curve25519: 50 });

    // Fifty other devices start Olm sessions with Alice's device while she is offline (on a server
    // whose long-poll wakes for count changes her loop would top up claim by claim).
    await client.sync.stop();
    for (let i = 0; i < 50; i++) {
      await matrixCall(s.server.url, bob, "POST", "/_matrix/client/v3/keys/claim", {
        one_time_keys: { [alice.userId]: { [alice.deviceId]: "signed_curve25519" } },
      });
    }
    expect(hs.state.keys.oneTimeKeyCounts(alice.userId, alice.deviceId)).toEqual({});
    const uploadsBefore = keysUploads(hs, alice.userId).length;
    const answered = recorded.length;
    // Back online: the first request resumes the connection and is answered at once.
    await client.sync.start();
    await waitUntil(
      "the loop long-polls again",
      () => recorded.length > answered && s.serverClock.pendingSleeps === 1,
    );

    const sinceDrain = recorded.slice(answered);
    const reported = sinceDrain.map(
      (r) => (r.body.extensions as { e2ee?: { device_one_time_keys_count?: unknown } } | undefined)?.e2ee,
    );
    const uploads = keysUploads(hs, alice.userId).slice(uploadsBefore);
    if (profiles[profile].slidingOmitZeroKeyCounts) {
      // The server leaves the drained count out (continuwuity: ruma skips the empty map), which
      // MSC3884 defines as "unchanged": nothing on the wire says the keys are gone. The first
      // response of the restarted loop carries no count, so the SDK asks `keys/upload {}` for it.
      expect(reported.every((e) => e?.device_one_time_keys_count === undefined)).toBe(true);
      expect(countQueries(hs, alice.userId).length).toBeGreaterThanOrEqual(1);
      expect(uploads.map(uploadShape)).toEqual([{ oneTimeKeys: 50, fallbackKeys: 0 }]);
      expect(hs.state.keys.oneTimeKeyCounts(alice.userId, alice.deviceId)).toEqual({ signed_curve25519: 50 });
    } else {
      // Reported as `{signed_curve25519: 0}`, or as `{}` where the server lists only algorithms it
      // holds keys for — the same zero (Client-Server spec, sync `device_one_time_keys_count`: an
      // unlisted algorithm's count is zero; MSC3884 keeps /sync's semantics for present fields).
      expect(uploads.map(uploadShape)).toEqual([{ oneTimeKeys: 50, fallbackKeys: 0 }]);
      expect(hs.state.keys.oneTimeKeyCounts(alice.userId, alice.deviceId)).toEqual({ signed_curve25519: 50 });
      // The count came with the response: nothing to ask.
      expect(countQueries(hs, alice.userId)).toEqual([]);
    }
    expect(seen.of("sync.error")).toEqual([]);
    expectEncryptionRequests(slidingRequests(hs));
  });
});
