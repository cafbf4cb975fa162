import { UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { CreateE2eeClientOptions } from "../../src/client-options.js";
import { loadCryptoWasm } from "../../src/crypto/load-wasm.js";
import { MemoryStateStore } from "../../src/state/memory-state-store.js";
import { CLASSIC_SYNC_PATH, SLIDING_SYNC_PATH } from "../../src/sync/sync-loops.js";
import {
  countQueries,
  endedBefore,
  expectEncryptionRequests,
  type InProcessSync,
  inProcessSync,
  KEYS_QUERY_PATH,
  keysUploads,
  livePos,
  posOf,
  SEQ_TYPE,
  SyncRecorder,
  scriptSliding,
  seqEvent,
  sinceOf,
  slidingRequests,
  waitUntil,
} from "../integration/support/sync-fixtures.js";

/**
 * What the loop does when a step fails: nothing is acknowledged until a response went through the
 * crypto layer, so the same request (same `pos`, same `to_device.since`) is asked again after a
 * backoff on the injected clock; a server's `retry_after_ms` is waited out; a lost position
 * (`M_UNKNOWN_POS`, MSC4186) drops only `pos`, keeps the to-device cursor (MSC3885: the server
 * keeps it per device) and marks every tracked device list for re-query. The client's clock is a
 * `ManualClock`: every wait below is the test moving it, never real time.
 */

let current: InProcessSync | undefined;

beforeAll(() => loadCryptoWasm());

afterEach(async () => {
  await current?.client.close();
  current = undefined;
});

async function setup(client: Partial<CreateE2eeClientOptions> = {}): Promise<InProcessSync> {
  current = await inProcessSync({ client });
  return current;
}

function parked(s: InProcessSync): Promise<void> {
  return waitUntil("the loop long-polls on the real route", () => s.serverClock.pendingSleeps === 1);
}

/** Times (client clock, from `t0`) at which sliding-sync requests were sent. */
function sentAt(s: InProcessSync, t0: number): number[] {
  return s.sent.filter((r) => r.path === SLIDING_SYNC_PATH).map((r) => r.at - t0);
}

/** Waits until the loop sleeps `ms` on the client clock, checks it does not send early, then wakes it. */
async function waitOut(
  s: InProcessSync,
  ms: number,
  requestsSoFar: number,
  path: string = SLIDING_SYNC_PATH,
): Promise<void> {
  await waitUntil(`the loop waits ${ms} ms`, () => s.clock.nextWakeAt === s.clock.now() + ms);
  await s.clock.advance(ms - 1);
  expect(s.sent.filter((r) => r.path === path)).toHaveLength(requestsSoFar);
  await s.clock.advance(1);
}

/** A state store whose first `failures` reads of the sync positions fail, as a broken IndexedDB does. */
class UnreadablePositions extends MemoryStateStore {
  #failures: number;

  constructor(failures: number) {
    super();
    this.#failures = failures;
  }

  override async get<T>(key: string): Promise<T | undefined> {
    if (key.startsWith("sync/positions/") && this.#failures > 0) {
      this.#failures--;
      throw new Error("the state store is unavailable");
    }
    return super.get<T>(key);
  }
}

async function sendSeq(s: InProcessSync, seq: number): Promise<void> {
  await s.call(s.bob, "PUT", `/_matrix/client/v3/sendToDevice/${SEQ_TYPE}/m${seq}`, {
    messages: { [s.alice.userId]: { [s.alice.deviceId]: { seq } } },
  });
}

describe("a failed crypto call", () => {
  it("is a sync.error at stage process; the positions stay; the same pos and since go again after the backoff", async () => {
    const s = await setup();
    const pos = await livePos(s.hs, s.hs.baseUrl, s.alice, s.hs.fetch);
    scriptSliding(s.hs, {
      pos,
      extensions: { to_device: { next_batch: "1", events: [seqEvent(s.bob.userId, 0)] } },
    });
    // Answered twice: once to the call that fails, once to its retry.
    scriptSliding(
      s.hs,
      {
        pos,
        extensions: {
          to_device: { next_batch: "2", events: [seqEvent(s.bob.userId, 1)] },
          e2ee: { device_one_time_keys_count: { signed_curve25519: 10 } },
        },
      },
      2,
    );
    const machine = s.client.olmMachine;
    const original = machine.receiveSyncChangesMsc4186.bind(machine);
    const crypto = vi
      .spyOn(machine, "receiveSyncChangesMsc4186")
      .mockImplementationOnce(original)
      .mockRejectedValueOnce(new Error("the crypto store is unavailable"));
    const seen = new SyncRecorder(s.client);
    await s.client.sync.start();

    await waitUntil("the second response fails", () => seen.of("sync.error").length === 1);
    expect(seen.of("sync.error")).toEqual([
      {
        mode: "sliding",
        stage: "process",
        retryInMs: 750,
        error: expect.objectContaining({ message: "the crypto store is unavailable" }),
      },
    ]);
    // Nothing of the failed response was taken: not its cursor, not its count (10), not its event.
    // The count known is the one the first response's refresh asked for (it carried none).
    expect(await s.client.sync.status()).toMatchObject({
      state: "running",
      oneTimeKeyCounts: { signed_curve25519: 50 },
      positions: { pos, toDeviceSince: "1" },
    });
    expect(seen.seqs).toEqual([0]);
    expect(keysUploads(s.hs, s.alice.userId)).toEqual([]);

    await waitOut(s, 750, 2);
    await parked(s);

    const requests = slidingRequests(s.hs);
    expect(requests.map((r) => [posOf(r), sinceOf(r)])).toEqual([
      [undefined, undefined],
      [pos, "1"],
      [pos, "1"],
      [pos, "2"],
    ]);
    expect(crypto).toHaveBeenCalledTimes(3);
    expect(seen.seqs).toEqual([0, 1]);
    expect(seen.of("sync.error")).toHaveLength(1);
    // The retried response went through: its count 10 was topped up to 50 before the next request.
    const uploads = keysUploads(s.hs, s.alice.userId);
    expect(uploads).toHaveLength(1);
    expect(Object.keys((uploads[0]!.body as { one_time_keys: object }).one_time_keys)).toHaveLength(40);
    expect(endedBefore(uploads[0]!, requests[3]!)).toBe(true);
    expect((await s.client.sync.status()).positions).toMatchObject({ pos, toDeviceSince: "2" });
    expectEncryptionRequests(requests);
  });
});

describe("a first response whose crypto call failed", () => {
  it("is still the first of the run when delivered again: its missing counts are fetched again", async () => {
    const s = await setup();
    const pos = await livePos(s.hs, s.hs.baseUrl, s.alice, s.hs.fetch);
    // Carries no count (as continuwuity leaves a zero out): the first response of a run asks for it.
    scriptSliding(s.hs, { pos, extensions: { to_device: { next_batch: "1", events: [] } } }, 2);
    const calls: Map<string, number>[] = [];
    const machine = s.client.olmMachine;
    const original = machine.receiveSyncChangesMsc4186.bind(machine);
    vi.spyOn(machine, "receiveSyncChangesMsc4186")
      .mockImplementationOnce(async (...args) => {
        calls.push(new Map(args[2]));
        throw new Error("the crypto store is unavailable");
      })
      .mockImplementation(async (...args) => {
        calls.push(new Map(args[2]));
        return original(...args);
      });
    const seen = new SyncRecorder(s.client);
    await s.client.sync.start();

    await waitOut(s, 750, 1);
    await parked(s);

    expect(seen.of("sync.error").map((e) => [e.stage, e.retryInMs])).toEqual([["process", 750]]);
    // One count request per delivery of the first response, each handed to its crypto call.
    expect(countQueries(s.hs, s.alice.userId)).toHaveLength(2);
    expect(calls.map((c) => Object.fromEntries(c))).toEqual([
      { signed_curve25519: 50 },
      { signed_curve25519: 50 },
    ]);
    expect((await s.client.sync.status()).oneTimeKeyCounts).toEqual({ signed_curve25519: 50 });
  });
});

describe("unreadable positions", () => {
  it.each([
    ["sliding", SLIDING_SYNC_PATH],
    ["classic", CLASSIC_SYNC_PATH],
  ] as const)(
    "%s: a sync.error at stage store, read again after the backoff; nothing is sent meanwhile",
    async (mode, path) => {
      const s = await setup({ stateStore: new UnreadablePositions(2) });
      const seen = new SyncRecorder(s.client);
      await s.client.sync.start({ mode });

      await waitOut(s, 750, 0, path);
      await waitOut(s, 1_500, 0, path);
      await parked(s);

      expect(seen.of("sync.error")).toEqual([
        {
          mode,
          stage: "store",
          retryInMs: 750,
          error: expect.objectContaining({ message: "the state store is unavailable" }),
        },
        expect.objectContaining({ mode, stage: "store", retryInMs: 1_500 }),
      ]);
      expect(
        seen.events.map((e) => e.name).filter((n) => n === "sync.running" || n === "sync.stopped"),
      ).toEqual(["sync.running"]);
      expect(await s.client.sync.status()).toMatchObject({ state: "running", mode });
      // The read that worked came before the first request: it went out from the stored positions.
      expect(s.sent.filter((r) => r.path === path).length).toBeGreaterThanOrEqual(2);
    },
  );
});

describe("rate limiting", () => {
  it("waits out retry_after_ms: the transport between attempts, then the loop after the last one", async () => {
    const s = await setup();
    s.hs.control.scriptFailure({
      method: "POST",
      path: SLIDING_SYNC_PATH,
      status: 429,
      retryAfterMs: 2_500,
      times: 5,
    });
    const seen = new SyncRecorder(s.client);
    const retried: unknown[] = [];
    s.client.events.on("http.requestRetried", (p) => retried.push(p));
    const t0 = s.clock.now();
    await s.client.sync.start();

    // The transport's five attempts, 2.5 s apart; then the loop's own wait, also 2.5 s.
    for (let k = 1; k <= 5; k++) await waitOut(s, 2_500, k);
    await parked(s);

    expect(sentAt(s, t0)).toEqual([0, 2_500, 5_000, 7_500, 10_000, 12_500, 12_500]);
    expect(retried).toHaveLength(4);
    expect(retried).toEqual(
      Array(4).fill(
        expect.objectContaining({
          path: SLIDING_SYNC_PATH,
          delayMs: 2_500,
          status: 429,
          errcode: "M_LIMIT_EXCEEDED",
        }),
      ),
    );
    expect(seen.of("sync.error")).toEqual([
      {
        mode: "sliding",
        stage: "request",
        // The loop's own backoff would be 750 ms; the server asked for more.
        retryInMs: 2_500,
        error: expect.objectContaining({ errcode: "M_LIMIT_EXCEEDED", retryAfterMs: 2_500 }),
      },
    ]);
    expect((await s.client.sync.status()).positions.pos).toBeDefined();
    expectEncryptionRequests(slidingRequests(s.hs));
  });

  it("waits no longer than its retry cap (60 s), whatever retry_after_ms says", async () => {
    const s = await setup();
    s.hs.control.scriptFailure({
      method: "POST",
      path: SLIDING_SYNC_PATH,
      status: 429,
      retryAfterMs: 3_600_000,
      times: 5,
    });
    const seen = new SyncRecorder(s.client);
    const t0 = s.clock.now();
    await s.client.sync.start();

    // The transport's own cap on a server-asked wait is 60 s too.
    for (let k = 1; k <= 5; k++) await waitOut(s, 60_000, k);
    await parked(s);

    expect(sentAt(s, t0)).toEqual([0, 60_000, 120_000, 180_000, 240_000, 300_000, 300_000]);
    expect(seen.of("sync.error")).toEqual([
      expect.objectContaining({
        stage: "request",
        retryInMs: 60_000,
        error: expect.objectContaining({ retryAfterMs: 3_600_000 }),
      }),
    ]);
  });
});

describe("M_UNKNOWN_POS", () => {
  it("drops pos, keeps the to-device since, marks every tracked user dirty and re-queries them", async () => {
    const s = await setup();
    await sendSeq(s, 0);
    await sendSeq(s, 1);
    // The first response delivers message 0 (as the server would), the second finds pos forgotten.
    const first = s.hs.control.toDeviceInbox(s.alice.userId, s.alice.deviceId, { limit: 1 });
    scriptSliding(s.hs, {
      pos: "999999",
      extensions: { to_device: { next_batch: first.nextBatch, events: first.events } },
    });
    s.hs.control.scriptFailure({
      method: "POST",
      path: SLIDING_SYNC_PATH,
      status: 400,
      errcode: "M_UNKNOWN_POS",
      error: "Unknown position",
    });
    await s.client.olmMachine.updateTrackedUsers([new UserId(s.bob.userId)]);
    const dirty = vi.spyOn(s.client.olmMachine, "markAllTrackedUsersAsDirty");
    const seen = new SyncRecorder(s.client);
    await s.client.sync.start();
    await parked(s);

    expect(dirty).toHaveBeenCalledTimes(1);
    expect(seen.events.map((e) => e.name).filter((n) => n !== "sync.running")).toEqual([
      "sync.toDevice",
      "sync.positionLost",
      "sync.toDevice",
    ]);
    expect(seen.of("sync.positionLost")).toEqual([{ mode: "sliding" }]);
    expect(seen.of("sync.error")).toEqual([]);
    // Message 0 once, message 1 once: the kept `since` acknowledged 0 and fetched 1.
    expect(seen.seqs).toEqual([0, 1]);

    const requests = slidingRequests(s.hs);
    expect(requests.map((r) => [posOf(r), sinceOf(r)])).toEqual([
      [undefined, undefined],
      ["999999", first.nextBatch],
      [undefined, first.nextBatch],
      [expect.any(String), expect.any(String)],
    ]);
    // The new connection's first request answers at once.
    expect(new URLSearchParams(requests[2]!.query).get("timeout")).toBe("0");
    // The re-query of every tracked user went out before the new connection started.
    const queries = s.hs.control
      .requestLog()
      .filter(
        (e) => e.path === KEYS_QUERY_PATH && endedBefore(requests[1]!, e) && endedBefore(e, requests[2]!),
      );
    expect(queries).toHaveLength(1);
    expect(Object.keys((queries[0]!.body as { device_keys: object }).device_keys)).toContain(s.bob.userId);
    // The parked request acknowledged message 1.
    expect(s.hs.control.toDeviceInbox(s.alice.userId, s.alice.deviceId).events).toEqual([]);
    expectEncryptionRequests(requests);
  });

  it("keeps pos and backs off while the device lists cannot be marked dirty", async () => {
    const s = await setup();
    scriptSliding(s.hs, { pos: "999999", extensions: { to_device: { next_batch: "0", events: [] } } });
    s.hs.control.scriptFailure({
      method: "POST",
      path: SLIDING_SYNC_PATH,
      status: 400,
      errcode: "M_UNKNOWN_POS",
      error: "Unknown position",
      times: 2,
    });
    const dirty = vi
      .spyOn(s.client.olmMachine, "markAllTrackedUsersAsDirty")
      .mockRejectedValueOnce(new Error("the crypto store is unavailable"));
    const seen = new SyncRecorder(s.client);
    const t0 = s.clock.now();
    await s.client.sync.start();

    await waitOut(s, 750, 2);
    await parked(s);

    expect(sentAt(s, t0)).toEqual([0, 0, 750, 750, 750]);
    expect(slidingRequests(s.hs).map(posOf)).toEqual([
      undefined,
      "999999",
      "999999",
      undefined,
      expect.any(String),
    ]);
    expect(dirty).toHaveBeenCalledTimes(2);
    expect(seen.of("sync.error").map((e) => [e.stage, e.retryInMs, e.error.message])).toEqual([
      ["process", 750, "the crypto store is unavailable"],
    ]);
    expect(seen.of("sync.positionLost")).toHaveLength(1);
    expect(slidingRequests(s.hs).map(sinceOf).slice(1)).toEqual(["0", "0", "0", expect.any(String)]);
    expectEncryptionRequests(slidingRequests(s.hs));
  });

  it("answered to a request without pos is a server error: backed off, not a lost position", async () => {
    const s = await setup();
    s.hs.control.scriptFailure({
      method: "POST",
      path: SLIDING_SYNC_PATH,
      status: 400,
      errcode: "M_UNKNOWN_POS",
      error: "Unknown position",
      times: 2,
    });
    const dirty = vi.spyOn(s.client.olmMachine, "markAllTrackedUsersAsDirty");
    const seen = new SyncRecorder(s.client);
    const t0 = s.clock.now();
    await s.client.sync.start();

    await waitOut(s, 750, 1);
    await waitOut(s, 1_500, 2);
    await parked(s);

    expect(sentAt(s, t0)).toEqual([0, 750, 2_250, 2_250]);
    expect(seen.of("sync.error").map((e) => [e.stage, e.retryInMs, e.error.errcode])).toEqual([
      ["request", 750, "M_UNKNOWN_POS"],
      ["request", 1_500, "M_UNKNOWN_POS"],
    ]);
    expect(seen.of("sync.positionLost")).toEqual([]);
    expect(dirty).not.toHaveBeenCalled();
    expectEncryptionRequests(slidingRequests(s.hs));
  });
});
