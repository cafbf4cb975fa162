import { expect, it } from "vitest";
import { isSdkError } from "../../src/errors/sdk-error.js";
import type { StateStore } from "../../src/state/state-store.js";

/** The behaviour every `StateStore` shares; each implementation's test file runs it. */
export function stateStoreContract(makeStore: () => Promise<StateStore>): void {
  it("returns undefined for a key never set", async () => {
    const store = await makeStore();
    expect(await store.get("missing")).toBeUndefined();
  });

  it("round-trips JSON values of every kind", async () => {
    const store = await makeStore();
    const values: unknown[] = [
      { cursor: "d123", drained: 42, nested: { list: [1, "two", null, true] } },
      [1, 2, 3],
      "text",
      0,
      false,
      null,
    ];
    for (const [i, value] of values.entries()) {
      await store.set(`k${i}`, value);
      expect(await store.get(`k${i}`)).toEqual(value);
    }
  });

  it("returns a copy, so neither the written nor the read object aliases the store", async () => {
    const store = await makeStore();
    const written = { count: 1 };
    await store.set("obj", written);
    written.count = 2;
    const read = await store.get<{ count: number }>("obj");
    expect(read).toEqual({ count: 1 });
    read!.count = 3;
    expect(await store.get("obj")).toEqual({ count: 1 });
  });

  it("overwrites and deletes, and deleting a missing key is a no-op", async () => {
    const store = await makeStore();
    await store.set("a", 1);
    await store.set("a", 2);
    expect(await store.get("a")).toBe(2);
    await store.delete("a");
    expect(await store.get("a")).toBeUndefined();
    await expect(store.delete("never-set")).resolves.toBeUndefined();
  });

  it("keeps keys apart", async () => {
    const store = await makeStore();
    await store.set("a", "A");
    await store.set("b", "B");
    await store.delete("a");
    expect(await store.get("b")).toBe("B");
  });

  it("rejects values JSON cannot hold with not_serialisable, keeping the previous value", async () => {
    const store = await makeStore();
    await store.set("k", { ok: true });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    for (const bad of [10n, circular, undefined, () => 1, Symbol("s")]) {
      const error = await store.set("k", bad).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isSdkError(error) && error.code).toBe("not_serialisable");
    }
    expect(await store.get("k")).toEqual({ ok: true });
  });
}
