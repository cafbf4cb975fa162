import { beforeAll, describe, expect, it } from "vitest";
import { loadCryptoWasm } from "../src/crypto/load-wasm.js";
import { createMatrixHttp } from "../src/http/matrix-http.js";
import { emptyResponseSchema } from "../src/http/schemas/empty.js";
import { createMockHomeserver } from "../src/testing/index.js";
import { useInProcessClients } from "./support/in-process-clients.js";

/**
 * Results cross the client's face as plain data, so the client can live behind a thread
 * boundary: each survives `structuredClone` equal to itself, and nothing in it is a class
 * instance (of crypto-wasm or of this SDK) or a function. The only extras are the non-enumerable
 * printing helpers of secret-storage keys, which a clone drops.
 */

beforeAll(() => loadCryptoWasm());

const PASSWORD = "pw-for-plain-data";
const { newUser, secondLogin } = useInProcessClients(PASSWORD);

/**
 * Fails on anything but JSON-like data: primitives, arrays, byte arrays, and objects whose
 * prototype is `Object.prototype` (or null). Looks at enumerable own properties, what a clone copies.
 */
function expectPlainData(value: unknown, path = "result"): void {
  if (value === null || value === undefined) return;
  const type = typeof value;
  if (type === "string" || type === "number" || type === "boolean") return;
  expect(type, `${path} is a ${type}`).toBe("object");
  if (value instanceof Uint8Array) {
    expect(Object.getPrototypeOf(value), `${path} is a plain Uint8Array`).toBe(Uint8Array.prototype);
    return;
  }
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) expectPlainData(item, `${path}[${i}]`);
    return;
  }
  const proto = Object.getPrototypeOf(value);
  expect(proto === Object.prototype || proto === null, `${path} is a class instance`).toBe(true);
  for (const [key, item] of Object.entries(value as object)) expectPlainData(item, `${path}.${key}`);
}

/** The clone equals the original (type by type, undefined fields included) and is plain data. */
function expectCloneable<T>(value: T): T {
  expectPlainData(value);
  const clone = structuredClone(value);
  expect(clone).toStrictEqual(value);
  return clone;
}

describe("results of the client are plain data", () => {
  it("crossSigning.bootstrap() and crossSigning.status()", async () => {
    const { client } = await newUser(createMockHomeserver(), "dora");

    const created = await client.crossSigning.bootstrap({ createSecretStorageKey: true });
    const status = await client.crossSigning.status();

    const clone = expectCloneable(created);
    expect(clone).toMatchObject({
      recoveryKey: created.recoveryKey,
      secretStorageKey: { keyId: created.secretStorageKey!.keyId },
      storedInSecretStorage: expect.arrayContaining(["master", "selfSigning", "userSigning"]),
      dehydratedDevice: undefined,
    });
    expect([...clone.secretStorageKey!.key]).toEqual([...created.secretStorageKey!.key]);
    // The printing helpers stay behind: the clone is the data alone.
    expect(JSON.stringify(created.secretStorageKey)).toBe(
      JSON.stringify({ keyId: clone.secretStorageKey!.keyId }),
    );
    expect(JSON.stringify(clone.secretStorageKey)).toContain('"key":{');
    expect(expectCloneable(status)).toEqual({ hasMaster: true, hasSelfSigning: true, hasUserSigning: true });
  });

  it("crossSigning.bootstrap({ reset: true }), with the dehydrated device's outcome", async () => {
    const { client } = await newUser(createMockHomeserver(), "edda");
    const { secretStorageKey } = await client.crossSigning.bootstrap({ createSecretStorageKey: true });
    await client.dehydration.replaceNow({ secretStorageKey: secretStorageKey! });

    const reset = await client.crossSigning.bootstrap({ reset: true, secretStorageKey: secretStorageKey! });

    expect(reset.dehydratedDevice).toMatchObject({ outcome: "replaced" });
    expectCloneable(reset);
  });

  it("crossSigning.restoreFromRecoveryKey()", async () => {
    const server = createMockHomeserver();
    const { account, client: first } = await newUser(server, "fern");
    const { recoveryKey } = await first.crossSigning.bootstrap({ createSecretStorageKey: true });
    const laptop = await secondLogin(server, account.userId);

    const restored = await laptop.crossSigning.restoreFromRecoveryKey(recoveryKey!);

    const clone = expectCloneable(restored);
    expect(clone).toMatchObject({
      restored: expect.arrayContaining(["master", "selfSigning", "userSigning"]),
      status: { hasMaster: true, hasSelfSigning: true, hasUserSigning: true },
      deviceCrossSigned: true,
      secretStorageKey: { keyId: restored.secretStorageKey.keyId },
    });
    expect([...clone.secretStorageKey.key]).toEqual([...restored.secretStorageKey.key]);
  });

  it("dehydration.status() and dehydration.drain() with no device", async () => {
    const { client } = await newUser(createMockHomeserver(), "gaia");

    const status = await client.dehydration.status();
    const drained = await client.dehydration.drain();

    expect(expectCloneable(status)).toEqual({
      device: { status: "none" },
      rotation: { running: false, record: undefined },
    });
    expect(expectCloneable(drained)).toEqual({ outcome: "no_device" });
  });

  it("dehydration.replaceNow(), status() and a completed drain() of a device with events", async () => {
    const server = createMockHomeserver();
    const { account, client } = await newUser(server, "hera");
    const { secretStorageKey } = await client.crossSigning.bootstrap({ createSecretStorageKey: true });
    const replaced = await client.dehydration.replaceNow({ secretStorageKey: secretStorageKey! });
    // Another client of the account sends the device a few pings, with its own transport.
    const sender = createMatrixHttp({
      baseUrl: server.baseUrl,
      fetch: server.fetch,
      accessToken: account.accessToken,
    });
    for (let n = 0; n < 3; n++) {
      await sender.request({
        method: "PUT",
        path: `/_matrix/client/v3/sendToDevice/org.example.ping/plain-${n}`,
        body: { messages: { [account.userId]: { [replaced.deviceId]: { n } } } },
        schema: emptyResponseSchema,
      });
    }

    const status = await client.dehydration.status();
    const drained = await client.dehydration.drain({ secretStorageKey: secretStorageKey! });

    expect(expectCloneable(replaced)).toMatchObject({ action: "replaced", previousDeviceId: undefined });
    expect(expectCloneable(status)).toMatchObject({
      device: { status: "valid", deviceId: replaced.deviceId },
      rotation: { running: false, record: { deviceId: replaced.deviceId } },
    });
    expect(expectCloneable(drained)).toMatchObject({ outcome: "completed", totals: { events: 3 } });
  });
});
