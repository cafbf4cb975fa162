import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { loadCryptoWasm } from "../../src/crypto/load-wasm.js";
import { currentSyncPosition, formatSyncToken } from "../../src/testing/index.js";
import {
  classicRequests,
  endedBefore,
  expectEncryptionRequests,
  type InProcessSync,
  inProcessSync,
  keysUploads,
  livePos,
  posOf,
  SyncRecorder,
  scriptClassic,
  scriptSliding,
  seqEvent,
  sinceOf,
  slidingRequests,
  waitUntil,
} from "../integration/support/sync-fixtures.js";

/**
 * How the loop hands each response to crypto-wasm: one call per response, in the order the server
 * answered, with the wire's absences kept apart (MSC3884: an omitted field is "unchanged",
 * `device_unused_fallback_key_types: []` is "the fallback key was used"; classic `/sync`: a
 * missing count is zero). Responses are scripted 200s from the in-process mock; the request after
 * the last one reaches the real route and long-polls there (on a clock nobody advances), which
 * parks the loop.
 */

let current: InProcessSync | undefined;

beforeAll(() => loadCryptoWasm());

afterEach(async () => {
  await current?.client.close();
  current = undefined;
});

async function setup(): Promise<InProcessSync> {
  current = await inProcessSync();
  return current;
}

type MscArgs = Parameters<InProcessSync["client"]["olmMachine"]["receiveSyncChangesMsc4186"]>;

/** What each crypto call received, copied at call time (the `DeviceLists` is freed after it). */
function spyOnSlidingCalls(s: InProcessSync) {
  const calls: { toDevice: unknown[]; counts: Map<string, number>; fallback: Set<string> | undefined }[] = [];
  const machine = s.client.olmMachine;
  const original = machine.receiveSyncChangesMsc4186.bind(machine);
  const spy = vi.spyOn(machine, "receiveSyncChangesMsc4186").mockImplementation((...args: MscArgs) => {
    const [events, , counts, fallback] = args;
    calls.push({
      toDevice: JSON.parse(events) as unknown[],
      counts: new Map(counts),
      fallback: fallback === undefined ? undefined : new Set(fallback),
    });
    return original(...args);
  });
  return { calls, spy };
}

/** Parked: one long-poll waits on the server's clock, so every earlier response was processed. */
function parked(s: InProcessSync): Promise<void> {
  return waitUntil("the loop long-polls on the real route", () => s.serverClock.pendingSleeps === 1);
}

describe("sliding sync: one crypto call per response, strictly in order", () => {
  it("processes 30 scripted responses one after another, each acknowledged by the next request", async () => {
    const s = await setup();
    const pos = await livePos(s.hs, s.hs.baseUrl, s.alice, s.hs.fetch);
    const n = 30;
    for (let i = 0; i < n; i++) {
      scriptSliding(s.hs, {
        pos,
        extensions: {
          to_device: { next_batch: String(i + 1), events: [seqEvent(s.bob.userId, i)] },
          e2ee: { device_one_time_keys_count: { signed_curve25519: 50 + i } },
        },
      });
    }
    const { calls, spy } = spyOnSlidingCalls(s);
    const classic = vi.spyOn(s.client.olmMachine, "receiveSyncChanges");
    const seen = new SyncRecorder(s.client);
    await s.client.sync.start();
    await parked(s);

    expect(spy).toHaveBeenCalledTimes(n);
    expect(classic).not.toHaveBeenCalled();
    // Each call got exactly its own response's events and counts, in the server's order.
    expect(calls.map((c) => c.toDevice)).toEqual(
      Array.from({ length: n }, (_, i) => [seqEvent(s.bob.userId, i)]),
    );
    expect(calls.map((c) => c.counts.get("signed_curve25519"))).toEqual(
      Array.from({ length: n }, (_, i) => 50 + i),
    );
    expect(seen.of("sync.toDevice").map((p) => p.events.map((e) => e.event.content))).toEqual(
      Array.from({ length: n }, (_, i) => [{ seq: i }]),
    );
    expect(seen.toDevice.every((e) => e.kind === "plaintext")).toBe(true);

    // One request at a time, each carrying the cursor of the response before it.
    const requests = slidingRequests(s.hs);
    expect(requests).toHaveLength(n + 1);
    expect(requests.map(sinceOf)).toEqual([undefined, ...Array.from({ length: n }, (_, i) => String(i + 1))]);
    for (let i = 1; i < requests.length; i++) expect(endedBefore(requests[i - 1]!, requests[i]!)).toBe(true);
    expect(posOf(requests[0]!)).toBeUndefined();
    expect(requests.slice(1).every((r) => posOf(r) === pos)).toBe(true);
    expect((await s.client.sync.status()).positions).toEqual({
      pos,
      toDeviceSince: String(n),
      classicSince: undefined,
    });
    // Every count was 50 or more: nothing to top up.
    expect(keysUploads(s.hs, s.alice.userId)).toEqual([]);
    expectEncryptionRequests(requests);
  });

  it("hands crypto-wasm [] as an empty Set, an omitted field as undefined, omitted counts as an empty Map, an unlisted count as 0", async () => {
    const s = await setup();
    const pos = await livePos(s.hs, s.hs.baseUrl, s.alice, s.hs.fetch);
    const responses: { extensions?: unknown }[] = [
      {
        extensions: {
          e2ee: {
            device_one_time_keys_count: { signed_curve25519: 60 },
            device_unused_fallback_key_types: [],
          },
        },
      },
      { extensions: { e2ee: {} } },
      { extensions: { e2ee: { device_unused_fallback_key_types: ["signed_curve25519"] } } },
      { extensions: {} },
      {},
      { extensions: { e2ee: null, to_device: null } },
      { extensions: { e2ee: { device_one_time_keys_count: null, device_unused_fallback_key_types: null } } },
      { extensions: { e2ee: { device_one_time_keys_count: {} } } },
      { extensions: { e2ee: { device_one_time_keys_count: { signed_curve25519: 0 } } } },
    ];
    for (const r of responses) scriptSliding(s.hs, { pos, ...r });
    const { calls } = spyOnSlidingCalls(s);
    await s.client.sync.start();
    await parked(s);

    expect(
      calls.map((c) => ({ counts: Object.fromEntries(c.counts), fallback: c.fallback && [...c.fallback] })),
    ).toEqual([
      { counts: { signed_curve25519: 60 }, fallback: [] },
      { counts: {}, fallback: undefined },
      { counts: {}, fallback: ["signed_curve25519"] },
      { counts: {}, fallback: undefined },
      { counts: {}, fallback: undefined },
      { counts: {}, fallback: undefined },
      { counts: {}, fallback: undefined },
      { counts: { signed_curve25519: 0 }, fallback: undefined },
      { counts: { signed_curve25519: 0 }, fallback: undefined },
    ]);
    expect(calls.every((c) => c.fallback === undefined || c.fallback instanceof Set)).toBe(true);
    expect(calls.every((c) => c.counts instanceof Map)).toBe(true);
    // What crypto-wasm made of it: the first Set made the fallback key (one upload), each zero count
    // — the listed one and the unlisted one — a top-up of 50; "unchanged" made nothing.
    const uploads = keysUploads(s.hs, s.alice.userId).map((e) => {
      const body = e.body as { one_time_keys?: object; fallback_keys?: object };
      return {
        oneTimeKeys: Object.keys(body.one_time_keys ?? {}).length,
        fallbackKeys: Object.keys(body.fallback_keys ?? {}).length,
      };
    });
    expect(uploads).toEqual([
      { oneTimeKeys: 0, fallbackKeys: 1 },
      { oneTimeKeys: 50, fallbackKeys: 0 },
      { oneTimeKeys: 50, fallbackKeys: 0 },
    ]);
    expect((await s.client.sync.status()).unusedFallbackKeyTypes).toEqual(["signed_curve25519"]);
    expectEncryptionRequests(slidingRequests(s.hs));
  });

  it("a 200 with `extensions: {}` and the same pos (Synapse's worker timeout) changes nothing", async () => {
    const s = await setup();
    const pos = await livePos(s.hs, s.hs.baseUrl, s.alice, s.hs.fetch);
    scriptSliding(s.hs, {
      pos,
      extensions: {
        e2ee: { device_one_time_keys_count: { signed_curve25519: 50 }, device_unused_fallback_key_types: [] },
        to_device: { next_batch: "0", events: [] },
      },
    });
    scriptSliding(s.hs, { pos, extensions: {} }, 3);
    const { calls } = spyOnSlidingCalls(s);
    await s.client.sync.start();
    await parked(s);

    const requests = slidingRequests(s.hs);
    expect(requests).toHaveLength(5);
    // The first response made the fallback key; the empty ones asked for nothing.
    const uploads = keysUploads(s.hs, s.alice.userId);
    expect(uploads).toHaveLength(1);
    expect(endedBefore(uploads[0]!, requests[1]!)).toBe(true);
    expect(requests.slice(1).map((r) => [posOf(r), sinceOf(r)])).toEqual(Array(4).fill([pos, "0"]));
    expect(calls.slice(1).map((c) => [c.toDevice, c.counts.size, c.fallback])).toEqual(
      Array(3).fill([[], 0, undefined]),
    );
    expect(await s.client.sync.status()).toMatchObject({
      oneTimeKeyCounts: { signed_curve25519: 50 },
      unusedFallbackKeyTypes: [],
      positions: { pos, toDeviceSince: "0" },
    });
    expectEncryptionRequests(requests);
  });
});

describe("classic /sync: a missing count is zero", () => {
  it("passes signed_curve25519: 0 for a response without it, and the fallback Set only when sent", async () => {
    const s = await setup();
    const token = formatSyncToken(currentSyncPosition(s.hs.state));
    const responses: Record<string, unknown>[] = [
      { device_one_time_keys_count: { signed_curve25519: 70 }, device_unused_fallback_key_types: [] },
      {},
      { device_one_time_keys_count: { curve25519: 3 } },
      { device_one_time_keys_count: null, device_unused_fallback_key_types: ["signed_curve25519"] },
      { to_device: { events: [seqEvent(s.bob.userId, 7)] } },
    ];
    for (const r of responses) scriptClassic(s.hs, { next_batch: token, ...r });
    const machine = s.client.olmMachine;
    const original = machine.receiveSyncChanges.bind(machine);
    const calls: { counts: Record<string, number>; fallback: string[] | undefined; events: unknown[] }[] = [];
    vi.spyOn(machine, "receiveSyncChanges").mockImplementation(
      (events, lists, counts, fallback, settings) => {
        calls.push({
          counts: Object.fromEntries(counts),
          fallback: fallback && [...fallback],
          events: JSON.parse(events) as unknown[],
        });
        return original(events, lists, counts, fallback, settings);
      },
    );
    const sliding = vi.spyOn(machine, "receiveSyncChangesMsc4186");
    const handed: unknown[] = [];
    await s.client.sync.start({ mode: "classic", onResponse: (r) => void handed.push(r) });
    await parked(s);

    expect(sliding).not.toHaveBeenCalled();
    expect(calls.map(({ counts, fallback }) => ({ counts, fallback }))).toEqual([
      { counts: { signed_curve25519: 70 }, fallback: [] },
      { counts: { signed_curve25519: 0 }, fallback: undefined },
      { counts: { signed_curve25519: 0, curve25519: 3 }, fallback: undefined },
      { counts: { signed_curve25519: 0 }, fallback: ["signed_curve25519"] },
      { counts: { signed_curve25519: 0 }, fallback: undefined },
    ]);
    expect(calls[4]!.events).toEqual([seqEvent(s.bob.userId, 7)]);
    // Each response reached the app whole, after its crypto call, in order.
    expect(handed).toHaveLength(responses.length);
    const requests = classicRequests(s.hs);
    expect(requests).toHaveLength(responses.length + 1);
    expect(requests.map((r) => new URLSearchParams(r.query).get("since"))).toEqual([
      null,
      ...Array(responses.length).fill(token),
    ]);
    // The first Set made the fallback key (one upload); each of the four zeros a top-up of 50.
    expect(
      keysUploads(s.hs, s.alice.userId).map((e) => {
        const body = e.body as { one_time_keys?: object; fallback_keys?: object };
        return [Object.keys(body.one_time_keys ?? {}).length, Object.keys(body.fallback_keys ?? {}).length];
      }),
    ).toEqual([
      [0, 1],
      [50, 0],
      [50, 0],
      [50, 0],
      [50, 0],
    ]);
    expect((await s.client.sync.status()).positions.classicSince).toBe(token);
  });
});
