import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/testing/manual-clock.js";
import { ToDeviceStore } from "../../../src/testing/state/to-device-store.js";
import { HTTP_TRANSACTION_TTL_MS } from "../../../src/testing/state/transaction-cache.js";

const ALICE = "@alice:localhost";
const BOB = "@bob:localhost";

function message(n: number) {
  return { type: "m.test", sender: BOB, content: { n } };
}

function fill(store: ToDeviceStore, count: number, userId = ALICE, deviceId = "DEV"): number[] {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push(store.enqueue(userId, deviceId, message(i)));
  return ids;
}

describe("ToDeviceStore", () => {
  it("gives every message a stream id that grows across all devices", () => {
    const store = new ToDeviceStore();
    const a = store.enqueue(ALICE, "ONE", message(1));
    const b = store.enqueue(BOB, "TWO", message(2));
    const c = store.enqueue(ALICE, "ONE", message(3));

    expect([a, b, c]).toEqual([1, 2, 3]);
    expect(store.position).toBe(3);
    expect(store.inbox(ALICE, "ONE").map((e) => e.event.content.n)).toEqual([1, 3]);
  });

  it("pages through an inbox in order without removing anything", () => {
    const store = new ToDeviceStore();
    fill(store, 5);

    const first = store.page(ALICE, "DEV", 0, 2);
    const second = store.page(ALICE, "DEV", first.nextAfter, 2);
    const third = store.page(ALICE, "DEV", second.nextAfter, 2);
    const fourth = store.page(ALICE, "DEV", third.nextAfter, 2);

    expect([first, second, third].map((p) => p.events.map((e) => e.event.content.n))).toEqual([
      [0, 1],
      [2, 3],
      [4],
    ]);
    expect([first.hasMore, second.hasMore, third.hasMore]).toEqual([true, true, false]);
    expect(fourth).toEqual({ events: [], nextAfter: third.nextAfter, hasMore: false });
    expect(store.pendingCount(ALICE, "DEV")).toBe(5);
  });

  it("touches only the entries of the page it returns, however long the queue", () => {
    const store = new ToDeviceStore();
    const ids = fill(store, 20_000);

    const before = store.workDone;
    const page = store.page(ALICE, "DEV", ids[15_000]!, 100);

    expect(page.events).toHaveLength(100);
    expect(page.events[0]?.streamId).toBe(ids[15_001]);
    expect(store.workDone - before).toBe(100);
  });

  it("deletes acknowledged messages of that device only, up to and including the position", () => {
    const store = new ToDeviceStore();
    const ids = fill(store, 4, ALICE, "ONE");
    fill(store, 2, ALICE, "TWO");

    expect(store.acknowledge(ALICE, "ONE", ids[1]!)).toBe(2);
    expect(store.acknowledge(ALICE, "ONE", ids[1]!)).toBe(0);

    expect(store.inbox(ALICE, "ONE").map((e) => e.streamId)).toEqual([ids[2], ids[3]]);
    expect(store.pendingCount(ALICE, "TWO")).toBe(2);
    // A page from before the acknowledged position starts at the first message still there.
    expect(store.page(ALICE, "ONE", 0, 1).events[0]?.streamId).toBe(ids[2]);
  });

  it("keeps paging correct after many acknowledgements compact the queue", () => {
    const store = new ToDeviceStore();
    const ids = fill(store, 1_000);
    let acknowledged = 0;
    for (let i = 99; i < 900; i += 100) acknowledged += store.acknowledge(ALICE, "DEV", ids[i]!);

    expect(acknowledged).toBe(900);
    const page = store.page(ALICE, "DEV", 0, 1_000);
    expect(page.events.map((e) => e.streamId)).toEqual(ids.slice(900));
  });

  it("drops a deleted device's inbox; its transaction ids time out as in Synapse's cache", async () => {
    const clock = new ManualClock();
    const store = new ToDeviceStore(clock);
    fill(store, 3);
    store.recordTransaction(ALICE, "DEV", "m.test/txn1");

    store.deleteDevice(ALICE, "DEV");
    const keptAfterDeletion = store.hasTransaction(ALICE, "DEV", "m.test/txn1");
    await clock.advance(HTTP_TRANSACTION_TTL_MS + 1);

    expect(store.pendingCount(ALICE, "DEV")).toBe(0);
    expect(store.inbox(ALICE, "DEV")).toEqual([]);
    expect(keptAfterDeletion).toBe(true);
    expect(store.hasTransaction(ALICE, "DEV", "m.test/txn1")).toBe(false);
    expect(store.transactionCount).toBe(0);
  });

  it("remembers each device's transactions separately", () => {
    const store = new ToDeviceStore();
    expect(store.hasTransaction(ALICE, "ONE", "m.test/t")).toBe(false);
    store.recordTransaction(ALICE, "ONE", "m.test/t");
    expect(store.hasTransaction(ALICE, "ONE", "m.test/t")).toBe(true);
    expect(store.hasTransaction(ALICE, "TWO", "m.test/t")).toBe(false);
    expect(store.hasTransaction(ALICE, "ONE", "m.other/t")).toBe(false);
  });

  it("wakes listeners with the recipient, stream id and event of each delivery", () => {
    const store = new ToDeviceStore();
    const arrivals: unknown[] = [];
    const off = store.onChange((a) => arrivals.push(a));
    store.onChange(() => {
      throw new Error("a broken listener must not break delivery");
    });

    const id = store.enqueue(ALICE, "DEV", message(1));
    off();
    store.enqueue(ALICE, "DEV", message(2));

    expect(arrivals).toEqual([{ userId: ALICE, deviceId: "DEV", streamId: id, event: message(1) }]);
    expect(store.pendingCount(ALICE, "DEV")).toBe(2);
  });

  it("stores a copy of each event, so the sender changing its object later changes nothing", () => {
    const store = new ToDeviceStore();
    const event = message(1);
    store.enqueue(ALICE, "DEV", event);
    event.content.n = 99;

    expect(store.inbox(ALICE, "DEV")[0]?.event.content.n).toBe(1);
  });
});
