import { describe, expect, it } from "vitest";
import { Coalescer } from "../../src/device-lists/coalescer.js";
import type { QueryMark } from "../../src/device-lists/query-order.js";
import { ResyncRateLimit } from "../../src/device-lists/rate-limit.js";
import { RefreshArrivals } from "../../src/device-lists/refresh-arrivals.js";
import { RequeryBatcher } from "../../src/device-lists/requery-batcher.js";
import { DEFAULT_SERVER_BACKOFF, ServerBackoff } from "../../src/device-lists/server-backoff.js";
import type { ErrorInfo } from "../../src/errors/error-info.js";
import { ManualClock } from "../../src/testing/manual-clock.js";

/**
 * The pieces that bound how often a resync asks the server: the coalescer (one flight per user),
 * the rate limit (one start per user and window), the per-server backoff (15 s doubling to
 * 15 min), the re-query batcher (few calls for many users) and the wait for an accepted refresh.
 * Time comes from a `ManualClock`; nothing waits in real time.
 */

const ERROR: ErrorInfo = { name: "SdkError", code: "server_unreachable", message: "unreachable" };

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe("Coalescer", () => {
  it("joins asks for a key in flight, starts afresh once it settled", async () => {
    const coalescer = new Coalescer<string>();
    const gate = deferred();
    let starts = 0;
    const start = () => {
      starts++;
      return gate.promise;
    };
    const first = coalescer.run("u", start);
    const asks = Array.from({ length: 1000 }, () => coalescer.run("u", start));
    expect(first.joined).toBe(false);
    expect(asks.every((a) => a.joined && a.flight === first.flight)).toBe(true);
    expect(starts).toBe(1);
    expect(coalescer.inFlight("u")).toBe(first.flight);
    gate.resolve();
    await first.flight;
    expect(coalescer.inFlight("u")).toBeUndefined();
    coalescer.run("u", () => Promise.resolve());
    expect(starts).toBe(1);
    expect(coalescer.size).toBe(1);
  });

  it("keeps keys apart, and forgets a flight that failed", async () => {
    const coalescer = new Coalescer<string>();
    const a = coalescer.run("a", () => Promise.reject(new Error("boom")));
    const b = coalescer.run("b", () => Promise.resolve());
    expect(a.flight).not.toBe(b.flight);
    await expect(a.flight).rejects.toThrow("boom");
    await b.flight;
    expect(coalescer.size).toBe(0);
  });
});

describe("ResyncRateLimit", () => {
  it("blocks a user for the window after a start, on the clock", async () => {
    const clock = new ManualClock();
    const limit = new ResyncRateLimit(10_000);
    expect(limit.blockedUntil("u", clock.now())).toBeUndefined();
    limit.record("u", clock.now());
    const until = clock.now() + 10_000;
    expect(limit.blockedUntil("u", clock.now())).toBe(until);
    expect(limit.blockedUntil("v", clock.now())).toBeUndefined();
    await clock.advance(9_999);
    expect(limit.blockedUntil("u", clock.now())).toBe(until);
    await clock.advance(1);
    expect(limit.blockedUntil("u", clock.now())).toBeUndefined();
  });

  it("a window of 0 never blocks", () => {
    const limit = new ResyncRateLimit(0);
    limit.record("u", 5);
    expect(limit.blockedUntil("u", 5)).toBeUndefined();
  });
});

describe("ServerBackoff", () => {
  it("waits 15 s, 30 s, 60 s … doubling per failure in a row, capped at 15 min", async () => {
    const clock = new ManualClock();
    const backoff = new ServerBackoff();
    const waits: number[] = [];
    for (let i = 0; i < 10; i++) {
      const failure = backoff.failure("remote.example", clock.now(), ERROR);
      waits.push(failure.nextRetryAt - clock.now());
      expect(failure.failures).toBe(i + 1);
      expect(backoff.blocked("remote.example", clock.now())).toEqual(failure);
      await clock.advance(failure.nextRetryAt - clock.now());
      expect(backoff.blocked("remote.example", clock.now())).toBeUndefined();
    }
    expect(waits).toEqual([15, 30, 60, 120, 240, 480, 900, 900, 900, 900].map((s) => s * 1000));
    expect(DEFAULT_SERVER_BACKOFF).toEqual({ baseMs: 15_000, capMs: 900_000 });
  });

  it("does not double again for failures while the server already waits", async () => {
    const clock = new ManualClock();
    const backoff = new ServerBackoff();
    const first = backoff.failure("remote.example", clock.now(), ERROR);
    await clock.advance(5_000);
    // Many users of one answer, or a query the crypto layer sent meanwhile.
    for (let i = 0; i < 100; i++) backoff.failure("remote.example", clock.now(), ERROR);
    expect(backoff.blocked("remote.example", clock.now())).toEqual(first);
    await clock.advance(10_000);
    expect(backoff.failure("remote.example", clock.now(), ERROR).nextRetryAt - clock.now()).toBe(30_000);
  });

  it("waits as long as a 429's retry_after_ms asks when that is longer, within the cap", () => {
    const backoff = new ServerBackoff();
    expect(backoff.failure("home.example", 0, ERROR, 2_000).nextRetryAt).toBe(15_000);
    backoff.success("home.example");
    expect(backoff.failure("home.example", 0, ERROR, 120_000).nextRetryAt).toBe(120_000);
    // Asked again while it waits, for longer still: the wait grows, the failure count does not.
    const longer = backoff.failure("home.example", 1_000, ERROR, 10 * 60 * 60_000);
    expect(longer).toMatchObject({ failures: 1, nextRetryAt: 1_000 + 900_000 });
  });

  it("starts from the base again after a success, and keeps servers apart", () => {
    const backoff = new ServerBackoff({ baseMs: 100, capMs: 1_000 });
    backoff.failure("a", 0, ERROR);
    backoff.failure("a", 100, ERROR);
    expect(backoff.blocked("a", 100)?.failures).toBe(2);
    expect(backoff.blocked("b", 100)).toBeUndefined();
    backoff.success("a");
    expect(backoff.blocked("a", 100)).toBeUndefined();
    expect(backoff.failure("a", 100, ERROR).nextRetryAt).toBe(200);
  });
});

describe("RequeryBatcher", () => {
  it("sends users asked for while a batch runs together in the next one", async () => {
    const batches: string[][] = [];
    const gates: ReturnType<typeof deferred>[] = [];
    const batcher = new RequeryBatcher<string>(async (users) => {
      batches.push(users);
      const gate = deferred();
      gates.push(gate);
      await gate.promise;
      return new Map(users.map((u) => [u, `done ${batches.length}`]));
    });
    const first = batcher.requery(["a", "b"]);
    const waiting = ["c", "d", "e", "c"].map((u) => batcher.requery([u]));
    expect(batches).toEqual([["a", "b"]]);
    gates[0]?.resolve();
    expect((await first).get("a")).toBe("done 1");
    await new Promise((r) => setTimeout(r, 0));
    expect(batches).toEqual([
      ["a", "b"],
      ["c", "d", "e"],
    ]);
    gates[1]?.resolve();
    const outcomes = await Promise.all(waiting);
    expect(outcomes.every((o) => o === outcomes[0])).toBe(true);
    expect(outcomes[0]?.get("e")).toBe("done 2");
    // Idle again: the next ask goes out at once.
    const later = batcher.requery(["f"]);
    expect(batches).toHaveLength(3);
    gates[2]?.resolve();
    await later;
  });
});

describe("RefreshArrivals", () => {
  const idle = (seq: number): QueryMark => ({ seq, inFlight: false, failures: 0 });
  const busy = (seq: number, failures = 0): QueryMark => ({ seq, inFlight: true, failures });
  const ok = () => undefined;

  function watch(arrival: Promise<unknown>) {
    const seen: { value: unknown } = { value: undefined };
    void arrival.then((a) => {
      seen.value = a;
    });
    return seen;
  }

  it("arrives once the user was announced changed and then queried", async () => {
    const arrivals = new RefreshArrivals();
    const seen = watch(arrivals.expect("u", idle(0)).arrival);
    // A query before the announcement holds the old copy.
    arrivals.queried(["u"], 1, ok);
    await Promise.resolve();
    expect(seen.value).toBeUndefined();
    arrivals.changed(["u", "other"], idle(1));
    arrivals.queried(["u"], 2, ok);
    await Promise.resolve();
    expect(seen.value).toEqual({ kind: "arrived", seq: 2 });
  });

  it("fails when a query sent after the 202 names the user's server in failures", async () => {
    const arrivals = new RefreshArrivals();
    const { arrival } = arrivals.expect("u", busy(4));
    // The query in flight at the 202 says nothing about this refresh.
    arrivals.queried(["u"], 5, () => "remote.example");
    arrivals.queried(["u"], 6, () => "remote.example");
    await expect(arrival).resolves.toEqual({ kind: "failed", server: "remote.example", seq: 6 });
  });

  it("an announcement before the 202 is some other change", async () => {
    const arrivals = new RefreshArrivals();
    // Sync announced a change while the refresh was being asked for.
    arrivals.changed(["u"], idle(0));
    const seen = watch(arrivals.expect("u", idle(0)).arrival);
    arrivals.queried(["u"], 1, ok);
    await Promise.resolve();
    expect(seen.value).toBeUndefined();
  });

  it("the answer to a query in flight at the announcement is not the refreshed list", async () => {
    const arrivals = new RefreshArrivals();
    const seen = watch(arrivals.expect("u", idle(0)).arrival);
    expect(arrivals.changed(["u"], busy(3))).toEqual(["u"]);
    arrivals.queried(["u"], 4, ok);
    await Promise.resolve();
    expect(seen.value).toBeUndefined();
    // The query sent after it is.
    arrivals.queried(["u"], 5, ok);
    await Promise.resolve();
    expect(seen.value).toEqual({ kind: "arrived", seq: 5 });
  });

  it("once a later pass is over with no failed query, the answer kept meanwhile is the refreshed list", async () => {
    const arrivals = new RefreshArrivals();
    const seen = watch(arrivals.expect("u", idle(0)).arrival);
    arrivals.changed(["u"], busy(3, 0));
    arrivals.queried(["u"], 4, ok);
    // A query failed meanwhile: the later pass may have lost the re-query, so no verdict yet.
    arrivals.drained(["u"], 1);
    await Promise.resolve();
    expect(seen.value).toBeUndefined();
    arrivals.drained(["u"], 0);
    await Promise.resolve();
    expect(seen.value).toEqual({ kind: "arrived", seq: 4 });
  });

  it("a cancelled wait hears nothing", async () => {
    const arrivals = new RefreshArrivals();
    const { arrival, cancel } = arrivals.expect("u", idle(0));
    cancel();
    arrivals.changed(["u"], idle(0));
    arrivals.queried(["u"], 1, ok);
    const result = await Promise.race([arrival, new Promise((r) => setTimeout(() => r("pending"), 5))]);
    expect(result).toBe("pending");
  });
});
