import { describe, expect, it } from "vitest";
import { MemoryStateStore } from "../../src/state/memory-state-store.js";
import { stateStoreContract } from "./state-store-contract.js";

describe("MemoryStateStore", () => {
  stateStoreContract(async () => new MemoryStateStore());

  it("claims only memory durability", () => {
    expect(new MemoryStateStore().durability).toBe("memory");
  });

  it("does not share values between instances", async () => {
    const a = new MemoryStateStore();
    await a.set("k", 1);
    expect(await new MemoryStateStore().get("k")).toBeUndefined();
  });
});
