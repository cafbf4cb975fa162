import { afterEach, describe, expect, it, vi } from "vitest";

// Each test gets a fresh module graph, so the loader's cached promise starts empty.
afterEach(() => {
  vi.doUnmock("@matrix-org/matrix-sdk-crypto-wasm");
  vi.resetModules();
});

describe("loadCryptoWasm", () => {
  it("initialises the wasm once however many callers ask, concurrently or later", async () => {
    const initAsync = vi.fn(async () => {});
    vi.doMock("@matrix-org/matrix-sdk-crypto-wasm", () => ({ initAsync }));
    const { loadCryptoWasm } = await import("../../src/crypto/load-wasm.js");
    const a = loadCryptoWasm();
    const b = loadCryptoWasm();
    expect(b).toBe(a);
    await Promise.all([a, b]);
    await loadCryptoWasm();
    expect(initAsync).toHaveBeenCalledTimes(1);
  });

  it("forgets a failed load so the next call tries again", async () => {
    const initAsync = vi
      .fn<() => Promise<void>>()
      .mockRejectedValueOnce(new Error("fetch failed"))
      .mockResolvedValue(undefined);
    vi.doMock("@matrix-org/matrix-sdk-crypto-wasm", () => ({ initAsync }));
    const { loadCryptoWasm } = await import("../../src/crypto/load-wasm.js");
    await expect(loadCryptoWasm()).rejects.toThrow("fetch failed");
    await expect(loadCryptoWasm()).resolves.toBeUndefined();
    expect(initAsync).toHaveBeenCalledTimes(2);
  });

  it("really loads crypto-wasm so machines can be made", async () => {
    const { loadCryptoWasm } = await import("../../src/crypto/load-wasm.js");
    await loadCryptoWasm();
    const W = await import("@matrix-org/matrix-sdk-crypto-wasm");
    const machine = await W.OlmMachine.initialize(new W.UserId("@a:test"), new W.DeviceId("A"));
    expect(machine.deviceId.toString()).toBe("A");
  });
});
