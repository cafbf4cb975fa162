import { DeviceId, initAsync, OlmMachine, RequestType, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { claimMissingSessions } from "../../src/crypto/claim-sessions.js";
import type { CryptoEvents } from "../../src/crypto/crypto-events.js";
import { backoffDelay, OutgoingRequestLoop } from "../../src/crypto/outgoing-requests.js";
import type { RequestMachine } from "../../src/crypto/send-outgoing-request.js";
import { NetworkError } from "../../src/errors/network-error.js";
import { ManualClock } from "../../src/testing/manual-clock.js";
import { apiError, deferred, FakeMatrixHttp } from "./support/fake-matrix-http.js";
import { KeyServer } from "./support/key-server.js";

beforeAll(async () => {
  await initAsync();
});

const loops: OutgoingRequestLoop[] = [];
afterEach(async () => {
  await Promise.all(loops.splice(0).map((l) => l.stop()));
});

async function newMachine(userId = "@alice:test", deviceId = "ALICE1") {
  return OlmMachine.initialize(new UserId(userId), new DeviceId(deviceId));
}

/** Wraps a real machine to observe the loop's calls into it. */
function observed(machine: OlmMachine) {
  const log = {
    outgoingCalls: 0,
    marked: [] as { id: string; type: RequestType; response: string }[],
    failNextOutgoing: undefined as Error | undefined,
  };
  const wrapper: RequestMachine = {
    async outgoingRequests() {
      log.outgoingCalls++;
      if (log.failNextOutgoing) {
        const err = log.failNextOutgoing;
        log.failNextOutgoing = undefined;
        throw err;
      }
      return machine.outgoingRequests();
    },
    async markRequestAsSent(id, type, response) {
      log.marked.push({ id, type, response });
      return machine.markRequestAsSent(id, type, response);
    },
  };
  return { wrapper, log };
}

function collect(loop: OutgoingRequestLoop) {
  const seen: { [K in keyof CryptoEvents]: CryptoEvents[K][] } = {
    requestSent: [],
    requestFailed: [],
    keysUploaded: [],
    keysQueried: [],
    loopFailed: [],
    retryScheduled: [],
  };
  for (const name of Object.keys(seen) as (keyof CryptoEvents)[]) {
    loop.events.on(name, (e) => (seen[name] as unknown[]).push(e));
  }
  return seen;
}

function newLoop(machine: RequestMachine, http: FakeMatrixHttp, clock: ManualClock, extra = {}) {
  const loop = new OutgoingRequestLoop({ machine, http, clock, random: () => 0, ...extra });
  loops.push(loop);
  return loop;
}

/** A loop over a fresh machine whose every POST fails at the network, so each pass schedules a retry. */
async function unreachableLoop() {
  const clock = new ManualClock();
  const http = new FakeMatrixHttp();
  http.on("POST", /.*/, () => {
    throw new NetworkError("POST", "x");
  });
  return { clock, http, loop: newLoop(await newMachine(), http, clock) };
}

describe("OutgoingRequestLoop", () => {
  it("sends the machine's keys upload and query to their endpoints and marks each sent with the response", async () => {
    const machine = await newMachine();
    const pending = await machine.outgoingRequests();
    const uploadBody = JSON.parse(pending.find((r) => r.type === RequestType.KeysUpload)!.body);
    const http = new KeyServer().attach(new FakeMatrixHttp(), "@alice:test", "ALICE1");
    const { wrapper, log } = observed(machine);
    const loop = newLoop(wrapper, http, new ManualClock());
    const events = collect(loop);

    await loop.run();

    const upload = http.callsTo("POST", "/keys/upload");
    expect(upload).toHaveLength(1);
    expect(upload[0]!.body).toEqual(uploadBody);
    expect(upload[0]!.retry).toBe("safe");
    const query = http.callsTo("POST", "/keys/query");
    expect(query).toHaveLength(1);
    expect(query[0]!.body).toEqual({ device_keys: { "@alice:test": [] } });
    expect(query[0]!.retry).toBe("safe");

    const markedUpload = log.marked.find((m) => m.type === RequestType.KeysUpload)!;
    expect(JSON.parse(markedUpload.response)).toEqual({ one_time_key_counts: { signed_curve25519: 50 } });
    expect(log.marked.map((m) => m.type).sort()).toEqual([RequestType.KeysUpload, RequestType.KeysQuery]);
    expect(events.requestSent.map((e) => e.kind).sort()).toEqual(["KeysQuery", "KeysUpload"]);
    // The machine took the responses: nothing is left to send.
    expect(await machine.outgoingRequests()).toEqual([]);
  });

  it("runs one more pass after a successful one, because answers can create more work", async () => {
    const machine = await newMachine();
    const http = new KeyServer().attach(new FakeMatrixHttp(), "@alice:test", "ALICE1");
    const { wrapper, log } = observed(machine);
    const loop = newLoop(wrapper, http, new ManualClock());
    await loop.run();
    // Pass 1 sends upload + query, pass 2 finds nothing and stops.
    expect(log.outgoingCalls).toBe(2);
  });

  it("coalesces any number of run() calls during a pass into exactly one more pass", async () => {
    const machine = await newMachine();
    const gate = deferred();
    const http = new KeyServer().attach(new FakeMatrixHttp(), "@alice:test", "ALICE1");
    http.on("POST", "/keys/upload", async () => {
      await gate.promise;
      return { one_time_key_counts: { signed_curve25519: 50 } };
    });
    const { wrapper, log } = observed(machine);
    const loop = newLoop(wrapper, http, new ManualClock(), { maxPassesPerRun: 1 });

    const first = loop.run();
    await new Promise((r) => setTimeout(r, 0));
    expect(loop.running).toBe(true);
    const more = [loop.run(), loop.run(), loop.run()];
    expect(log.outgoingCalls).toBe(1);
    gate.resolve();
    await Promise.all([first, ...more]);

    expect(log.outgoingCalls).toBe(2);
    expect(loop.running).toBe(false);
  });

  it("gives every run() a pass that starts after the call, whatever microtask it lands on", async () => {
    for (let ticks = 0; ticks < 12; ticks++) {
      let outgoingCalls = 0;
      let lateRun: Promise<void> | undefined;
      let callsWhenAsked = 0;
      const machine: RequestMachine = {
        async outgoingRequests() {
          outgoingCalls++;
          if (outgoingCalls === 1) {
            // Ask again `ticks` microtasks after the first pass found nothing to do.
            let p = Promise.resolve();
            for (let i = 0; i < ticks; i++) p = p.then(() => undefined);
            void p.then(() => {
              callsWhenAsked = outgoingCalls;
              lateRun = loop.run();
            });
          }
          return [];
        },
        async markRequestAsSent() {
          return true;
        },
      };
      const loop = newLoop(machine, new FakeMatrixHttp(), new ManualClock());
      await loop.run();
      while (!lateRun) await Promise.resolve();
      await lateRun;
      expect(outgoingCalls, `run() ${ticks} microtasks later`).toBeGreaterThan(callsWhenAsked);
    }
  });

  it("never has two requests in flight or two passes at once", async () => {
    const machine = await newMachine();
    const http = new FakeMatrixHttp();
    let inFlight = 0;
    let maxInFlight = 0;
    // Each request waits until the test releases it, so every other run() call and pass the loop
    // might start happens while it is still in flight.
    const parked: (() => void)[] = [];
    let arrival = deferred();
    const slow = (body: unknown) => async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const release = deferred();
      parked.push(release.resolve);
      arrival.resolve();
      await release.promise;
      inFlight--;
      return body;
    };
    http.on("POST", "/keys/upload", slow({ one_time_key_counts: { signed_curve25519: 50 } }));
    http.on("POST", "/keys/query", slow({}));
    const loop = newLoop(machine, http, new ManualClock());

    const runs = [loop.run(), loop.run()];
    await arrival.promise;
    runs.push(loop.run(), loop.run());
    const all = Promise.all(runs);
    let released = 0;
    // Release the parked request, then wait for the next one or for every run() to settle.
    while (parked.length > 0) {
      expect(parked).toHaveLength(1);
      arrival = deferred();
      parked.shift()!();
      released++;
      await Promise.race([arrival.promise, all]);
    }
    await all;

    expect(released).toBe(http.calls.length);
    expect(maxInFlight).toBe(1);
    expect(http.callsTo("POST", "/keys/upload")).toHaveLength(1);
  });

  it("starts a fresh pass when run() is called after the loop went idle", async () => {
    const machine = await newMachine();
    const http = new KeyServer().attach(new FakeMatrixHttp(), "@alice:test", "ALICE1");
    const { wrapper, log } = observed(machine);
    const loop = newLoop(wrapper, http, new ManualClock());
    await loop.run();
    const before = log.outgoingCalls;
    await machine.updateTrackedUsers([new UserId("@bob:test")]);
    await loop.run();
    expect(log.outgoingCalls).toBeGreaterThan(before);
    expect(http.callsTo("POST", "/keys/query").at(-1)!.body).toEqual({ device_keys: { "@bob:test": [] } });
  });

  it("turns a failed request into a requestFailed event and retries it after backoff on the clock", async () => {
    const machine = await newMachine();
    const clock = new ManualClock();
    const http = new KeyServer().attach(new FakeMatrixHttp(), "@alice:test", "ALICE1");
    let uploads = 0;
    http.on("POST", "/keys/upload", () => {
      uploads++;
      if (uploads === 1) throw apiError("POST", "/keys/upload", 502, {});
      return { one_time_key_counts: { signed_curve25519: 50 } };
    });
    const loop = newLoop(machine, http, clock, { retryBaseMs: 1_000 });
    const events = collect(loop);

    await loop.run();
    expect(events.requestFailed).toHaveLength(1);
    expect(events.requestFailed[0]!.kind).toBe("KeysUpload");
    expect((events.requestFailed[0]!.error as { status: number }).status).toBe(502);
    // random() = 0: half of the first 1 s step.
    expect(events.retryScheduled).toEqual([{ delayMs: 500, consecutiveFailures: 1 }]);
    // The query in the same pass was still sent.
    expect(http.callsTo("POST", "/keys/query")).toHaveLength(1);

    await clock.advance(499);
    expect(uploads).toBe(1);
    await clock.advance(1);
    await loop.run();
    expect(uploads).toBe(2);
    expect(events.requestSent.map((e) => e.kind)).toContain("KeysUpload");
    expect(await machine.outgoingRequests()).toEqual([]);
  });

  it("backs off exponentially across failed passes and starts over after a success", async () => {
    const machine = await newMachine();
    const clock = new ManualClock();
    const http = new KeyServer().attach(new FakeMatrixHttp(), "@alice:test", "ALICE1");
    let failing = true;
    http.on("POST", "/keys/upload", () => {
      if (failing) throw new NetworkError("POST", "/keys/upload");
      return { one_time_key_counts: { signed_curve25519: 50 } };
    });
    const loop = newLoop(machine, http, clock, { retryBaseMs: 1_000, retryCapMs: 4_000 });
    const events = collect(loop);

    await loop.run();
    for (let i = 0; i < 3; i++) await clock.runNext();
    expect(events.retryScheduled.map((e) => e.delayMs)).toEqual([500, 1_000, 2_000, 2_000]);

    failing = false;
    await clock.runNext();
    await loop.run();
    expect(clock.pendingSleeps).toBe(0);
    failing = true;
    await machine.updateTrackedUsers([new UserId("@carol:test")]);
    http.on("POST", "/keys/query", () => {
      throw new NetworkError("POST", "/keys/query");
    });
    await loop.run();
    expect(events.retryScheduled.at(-1)).toEqual({ delayMs: 500, consecutiveFailures: 1 });
  });

  it("waits at least as long as the server's retry_after_ms before asking again", async () => {
    const machine = await newMachine();
    const clock = new ManualClock();
    const http = new KeyServer().attach(new FakeMatrixHttp(), "@alice:test", "ALICE1");
    http.on("POST", "/keys/upload", () => {
      throw apiError("POST", "/keys/upload", 429, { errcode: "M_LIMIT_EXCEEDED" }, 7_000);
    });
    const loop = newLoop(machine, http, clock);
    const events = collect(loop);
    await loop.run();
    expect(events.retryScheduled[0]!.delayMs).toBe(7_000);
  });

  it("turns a malformed response into requestFailed and leaves the request pending in the machine", async () => {
    const machine = await newMachine();
    const http = new KeyServer().attach(new FakeMatrixHttp(), "@alice:test", "ALICE1");
    http.on("POST", "/keys/upload", () => ({ one_time_key_counts: "fifty" }));
    const { wrapper, log } = observed(machine);
    const loop = newLoop(wrapper, http, new ManualClock());
    const events = collect(loop);
    await loop.run();
    expect(events.requestFailed.map((e) => (e.error as { name: string }).name)).toEqual([
      "MalformedResponseError",
    ]);
    expect(log.marked.map((m) => m.type)).toEqual([RequestType.KeysQuery]);
    expect((await machine.outgoingRequests()).map((r) => r.type)).toContain(RequestType.KeysUpload);
  });

  it("turns a throwing outgoingRequests() into a loopFailed event and a retry, never a rejection", async () => {
    const machine = await newMachine();
    const clock = new ManualClock();
    const http = new KeyServer().attach(new FakeMatrixHttp(), "@alice:test", "ALICE1");
    const { wrapper, log } = observed(machine);
    log.failNextOutgoing = new Error("store closed");
    const loop = newLoop(wrapper, http, clock);
    const events = collect(loop);
    await expect(loop.run()).resolves.toBeUndefined();
    expect(events.loopFailed).toHaveLength(1);
    expect(events.retryScheduled).toHaveLength(1);
    await clock.runNext();
    await loop.run();
    expect(http.callsTo("POST", "/keys/upload")).toHaveLength(1);
  });

  it("keeps one pending retry however many passes fail meanwhile", async () => {
    const { clock, loop } = await unreachableLoop();
    await loop.run();
    await loop.run();
    await loop.run();
    expect(clock.pendingSleeps).toBe(1);
  });

  it("stop() cancels the pending retry and makes later run() calls no-ops", async () => {
    const { clock, http, loop } = await unreachableLoop();
    await loop.run();
    const sent = http.calls.length;
    await loop.stop();
    expect(clock.pendingSleeps).toBe(0);
    await clock.advance(600_000);
    await loop.run();
    expect(http.calls.length).toBe(sent);
  });

  it("stop() aborts the request in flight without reporting it as a failure", async () => {
    const machine = await newMachine();
    const http = new FakeMatrixHttp();
    http.on("POST", "/keys/upload", (call) => {
      return new Promise((_, reject) => {
        call.signal!.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
      });
    });
    const loop = newLoop(machine, http, new ManualClock());
    const events = collect(loop);
    const running = loop.run();
    await new Promise((r) => setTimeout(r, 0));
    expect(http.calls).toHaveLength(1);
    await loop.stop();
    await running;
    expect(events.requestFailed).toEqual([]);
    expect(events.retryScheduled).toEqual([]);
    expect(http.calls).toHaveLength(1);
  });

  it("isolates a throwing event listener from the loop", async () => {
    const machine = await newMachine();
    const http = new KeyServer().attach(new FakeMatrixHttp(), "@alice:test", "ALICE1");
    const loop = newLoop(machine, http, new ManualClock());
    loop.events.on("requestSent", () => {
      throw new Error("bad listener");
    });
    await loop.run();
    expect(await machine.outgoingRequests()).toEqual([]);
  });
});

describe("backoffDelay", () => {
  it.each([
    [1, 0, 500],
    [1, 1, 1_000],
    [2, 0, 1_000],
    [3, 0.5, 3_000],
    [10, 1, 60_000],
    [50, 0, 30_000],
  ])("after %i failures with random %d waits %i ms", (failures, random, expected) => {
    expect(backoffDelay(failures, 1_000, 60_000, () => random)).toBe(expected);
  });
});

describe("claimMissingSessions", () => {
  async function aliceWhoKnowsBob() {
    const server = new KeyServer();
    const bob = await newMachine("@bob:test", "BOB1");
    const bobHttp = server.attach(new FakeMatrixHttp(), "@bob:test", "BOB1");
    await newLoop(bob, bobHttp, new ManualClock()).run();
    const alice = await newMachine();
    const aliceHttp = server.attach(new FakeMatrixHttp(), "@alice:test", "ALICE1");
    await alice.updateTrackedUsers([new UserId("@bob:test")]);
    await newLoop(alice, aliceHttp, new ManualClock()).run();
    return { server, alice, aliceHttp };
  }

  it("claims one-time keys once, never to be retried, and establishes a session", async () => {
    const { server, alice, aliceHttp } = await aliceWhoKnowsBob();
    const before = server.oneTimeKeyCount("@bob:test", "BOB1");

    expect(await claimMissingSessions(alice, aliceHttp, ["@bob:test"])).toBe(true);

    const claims = aliceHttp.callsTo("POST", "/keys/claim");
    expect(claims).toHaveLength(1);
    expect(claims[0]!.retry).toBe("never");
    expect(claims[0]!.body).toMatchObject({ one_time_keys: { "@bob:test": { BOB1: "signed_curve25519" } } });
    expect(server.oneTimeKeyCount("@bob:test", "BOB1")).toBe(before - 1);
    // The session exists now: nothing more to claim.
    expect(await claimMissingSessions(alice, aliceHttp, ["@bob:test"])).toBe(false);
    expect(aliceHttp.callsTo("POST", "/keys/claim")).toHaveLength(1);
  });

  it("sends a failed claim once and surfaces the error to the caller", async () => {
    const { alice, aliceHttp } = await aliceWhoKnowsBob();
    aliceHttp.on("POST", "/keys/claim", () => {
      throw new NetworkError("POST", "/_matrix/client/v3/keys/claim");
    });
    await expect(claimMissingSessions(alice, aliceHttp, ["@bob:test"])).rejects.toMatchObject({
      name: "NetworkError",
    });
    expect(aliceHttp.callsTo("POST", "/keys/claim")).toHaveLength(1);
  });
});
