import "fake-indexeddb/auto";
import { DeviceId, OlmMachine, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { describe, expect, it } from "vitest";
import { createOlmMachine } from "../../src/crypto/olm-machine.js";
import type { Logger } from "../../src/logger.js";

function capturingLogger() {
  const lines: string[] = [];
  const sink = (...args: unknown[]) => lines.push(JSON.stringify(args));
  const logger: Logger = { debug: sink, info: sink, warn: sink, error: sink };
  return { logger, lines };
}

/** Everything an error exposes to a log line or a bug report. */
function exposed(err: unknown): string {
  const e = err as { message?: string; details?: unknown; cause?: unknown; stack?: string };
  return JSON.stringify({ m: e.message, d: e.details, c: String(e.cause), s: e.stack });
}

let storeSeq = 0;
const freshStoreName = () => `crypto-test-${++storeSeq}`;

describe("createOlmMachine", () => {
  it("creates an in-memory machine for the given user and device", async () => {
    const machine = await createOlmMachine({ userId: "@alice:test", deviceId: "ALICE1" });
    expect(machine.userId.toString()).toBe("@alice:test");
    expect(machine.deviceId.toString()).toBe("ALICE1");
    expect(machine.identityKeys.curve25519.toBase64()).toMatch(/^[A-Za-z0-9+/]{43}$/);
  });

  it("reopens an IndexedDB store by name and passphrase with the same identity keys", async () => {
    const store = { name: freshStoreName(), passphrase: "correct horse" };
    const first = await createOlmMachine({ userId: "@alice:test", deviceId: "ALICE1", store });
    const identity = first.identityKeys.ed25519.toBase64();
    first.close();
    const again = await createOlmMachine({ userId: "@alice:test", deviceId: "ALICE1", store });
    expect(again.identityKeys.ed25519.toBase64()).toBe(identity);
    again.close();
  });

  it("reopens an IndexedDB store by name and raw 32-byte key", async () => {
    const store = { name: freshStoreName(), key: crypto.getRandomValues(new Uint8Array(32)) };
    const first = await createOlmMachine({ userId: "@alice:test", deviceId: "ALICE2", store });
    const identity = first.identityKeys.curve25519.toBase64();
    first.close();
    const again = await createOlmMachine({ userId: "@alice:test", deviceId: "ALICE2", store });
    expect(again.identityKeys.curve25519.toBase64()).toBe(identity);
    again.close();
  });

  it("fails with a typed error on a wrong passphrase, naming neither passphrase", async () => {
    const name = freshStoreName();
    const { logger, lines } = capturingLogger();
    const m = await createOlmMachine({
      userId: "@alice:test",
      deviceId: "ALICE1",
      store: { name, passphrase: "first-Secret-42" },
      logger,
    });
    m.close();
    const err = await createOlmMachine({
      userId: "@alice:test",
      deviceId: "ALICE1",
      store: { name, passphrase: "second-Secret-43" },
      logger,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      name: "SdkError",
      code: "crypto_store_open_failed",
      details: { storeName: name },
    });
    for (const text of [exposed(err), ...lines]) {
      expect(text).not.toContain("first-Secret-42");
      expect(text).not.toContain("second-Secret-43");
    }
    expect(lines.length).toBeGreaterThan(0);
  });

  it("fails with a typed error when the store belongs to another device", async () => {
    const store = { name: freshStoreName(), passphrase: "pw" };
    (await createOlmMachine({ userId: "@alice:test", deviceId: "ALICE1", store })).close();
    await expect(createOlmMachine({ userId: "@alice:test", deviceId: "OTHER", store })).rejects.toMatchObject(
      {
        code: "crypto_store_open_failed",
      },
    );
  });

  it.each([
    ["an empty passphrase", { name: "s", passphrase: "" }],
    ["a 16-byte key", { name: "s", key: new Uint8Array(16) }],
    ["an empty name", { name: "", passphrase: "pw" }],
  ])("rejects %s before touching IndexedDB", async (_label, store) => {
    await expect(
      createOlmMachine({ userId: "@alice:test", deviceId: "ALICE1", store }),
    ).rejects.toMatchObject({
      code: "invalid_crypto_store",
    });
  });

  it("says IndexedDB is needed when a store is asked for where there is none", async () => {
    const saved = Object.getOwnPropertyDescriptor(globalThis, "indexedDB");
    delete (globalThis as { indexedDB?: unknown }).indexedDB;
    try {
      await expect(
        createOlmMachine({
          userId: "@alice:test",
          deviceId: "ALICE1",
          store: { name: "s", passphrase: "pw" },
        }),
      ).rejects.toMatchObject({ code: "indexeddb_unavailable" });
    } finally {
      if (saved) Object.defineProperty(globalThis, "indexedDB", saved);
    }
    expect(globalThis.indexedDB).toBeDefined();
  });

  it("returns a machine the app already has when it matches the user and device", async () => {
    const existing = await OlmMachine.initialize(new UserId("@bob:test"), new DeviceId("BOB1"));
    expect(await createOlmMachine({ userId: "@bob:test", deviceId: "BOB1", existingMachine: existing })).toBe(
      existing,
    );
  });

  it("refuses a machine the app already has for another device", async () => {
    const existing = await OlmMachine.initialize(new UserId("@bob:test"), new DeviceId("BOB1"));
    await expect(
      createOlmMachine({ userId: "@bob:test", deviceId: "BOB2", existingMachine: existing }),
    ).rejects.toMatchObject({
      code: "olm_machine_mismatch",
      details: { actual: { userId: "@bob:test", deviceId: "BOB1" } },
    });
  });

  it.each([
    ["a user id without sigil", { userId: "alice:test", deviceId: "D" }, "invalid_user_id"],
    ["an empty device id", { userId: "@alice:test", deviceId: "" }, "invalid_device_id"],
  ])("rejects %s with a typed error", async (_label, ids, code) => {
    await expect(createOlmMachine(ids)).rejects.toMatchObject({ code });
  });
});
