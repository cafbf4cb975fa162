import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/testing/manual-clock.js";
import { TransactionCache } from "../../../src/testing/state/transaction-cache.js";

const ALICE = "@alice:localhost";

describe("TransactionCache", () => {
  it("remembers a value per device and key until ttl has passed, then forgets it", async () => {
    const clock = new ManualClock();
    const cache = new TransactionCache<string>(clock, 1_000);
    cache.record(ALICE, "ONE", "k", "$a");

    const others = [cache.get(ALICE, "TWO", "k"), cache.get(ALICE, "ONE", "other")];
    await clock.advance(1_000);
    const atTtl = cache.get(ALICE, "ONE", "k");
    await clock.advance(1);

    expect(others).toEqual([undefined, undefined]);
    expect(atTtl).toBe("$a");
    expect(cache.has(ALICE, "ONE", "k")).toBe(false);
    expect(cache.size).toBe(0);
  });

  it("expires oldest first and keeps the newer entries", async () => {
    const clock = new ManualClock();
    const cache = new TransactionCache<number>(clock, 1_000);
    for (let i = 0; i < 10; i++) {
      cache.record(ALICE, "DEV", `t${i}`, i);
      await clock.advance(200);
    }
    // Recorded at 0, 200, …, 1800; now is 2000, so those at 1000 and later are left.
    expect(cache.size).toBe(5);
    expect(cache.get(ALICE, "DEV", "t4")).toBeUndefined();
    expect(cache.get(ALICE, "DEV", "t5")).toBe(5);
  });

  it("restarts the time of an id recorded again, keeping expiry in order", async () => {
    const clock = new ManualClock();
    const cache = new TransactionCache<string>(clock, 1_000);
    cache.record(ALICE, "DEV", "a", "first");
    cache.record(ALICE, "DEV", "b", "b");
    await clock.advance(600);
    cache.record(ALICE, "DEV", "a", "again");
    await clock.advance(600);

    expect(cache.get(ALICE, "DEV", "b")).toBeUndefined();
    expect(cache.get(ALICE, "DEV", "a")).toBe("again");
  });
});
