import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/testing/index.js";
import { SlidingConnectionStore } from "../../../src/testing/state/sliding-connections.js";

const alice = { userId: "@alice:localhost", deviceId: "PHONE", connId: "" };

describe("SlidingConnectionStore", () => {
  it("returns the state stored with a position, only on the connection that issued it", () => {
    const store = new SlidingConnectionStore<string>(new ManualClock());
    const pos = store.record(alice, undefined, "state-1")!;

    expect(store.resume(alice, pos)).toBe("state-1");
    expect(store.resume({ ...alice, deviceId: "LAPTOP" }, pos)).toBeUndefined();
    expect(store.resume({ ...alice, userId: "@bob:localhost" }, pos)).toBeUndefined();
    expect(store.resume({ ...alice, connId: "other" }, pos)).toBeUndefined();
  });

  it("forgets the other positions of a connection once one is used", () => {
    const store = new SlidingConnectionStore<string>(new ManualClock());
    const p1 = store.record(alice, undefined, "1")!;
    const p2 = store.record(alice, p1, "2")!;
    const p3 = store.record(alice, p1, "3")!;

    expect(store.resume(alice, p3)).toBe("3");
    expect(store.resume(alice, p1)).toBeUndefined();
    expect(store.resume(alice, p2)).toBeUndefined();
  });

  it("refuses to record after a position that is gone, rather than resurrect the connection", () => {
    const store = new SlidingConnectionStore<string>(new ManualClock());
    const p1 = store.record(alice, undefined, "1")!;
    store.expire({ userId: alice.userId });
    expect(store.record(alice, p1, "2")).toBeUndefined();
    expect(store.connections()).toEqual([]);
  });

  it("drops a connection idle for longer than the expiry, counting from its last use", async () => {
    const clock = new ManualClock(0);
    const store = new SlidingConnectionStore<string>(clock, 1_000);
    const pos = store.record(alice, undefined, "1")!;

    await clock.advance(900);
    expect(store.resume(alice, pos)).toBe("1");
    await clock.advance(1_000);
    expect(store.resume(alice, pos)).toBe("1");
    await clock.advance(1_001);
    expect(store.resume(alice, pos)).toBeUndefined();
  });

  it("expires by user, device and conn_id", () => {
    const store = new SlidingConnectionStore<string>(new ManualClock());
    store.record(alice, undefined, "a");
    store.record({ ...alice, connId: "x" }, undefined, "b");
    store.record({ ...alice, deviceId: "LAPTOP" }, undefined, "c");
    store.record({ ...alice, userId: "@bob:localhost" }, undefined, "d");

    expect(store.expire({ userId: alice.userId, deviceId: "PHONE", connId: "x" })).toBe(1);
    expect(store.expire({ userId: alice.userId, deviceId: "LAPTOP" })).toBe(1);
    expect(store.expire({ userId: alice.userId })).toBe(1);
    expect(store.connections().map((c) => c.userId)).toEqual(["@bob:localhost"]);
  });
});
