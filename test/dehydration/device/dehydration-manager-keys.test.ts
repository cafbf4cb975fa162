import {
  DehydratedDeviceKey,
  DeviceId,
  initAsync,
  type OlmMachine,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { createOlmMachine } from "../../../src/crypto/olm-machine.js";
import { OutgoingRequestLoop } from "../../../src/crypto/outgoing-requests.js";
import { DehydrationManager } from "../../../src/dehydration/device/dehydration-manager.js";
import type { DehydrationEvents } from "../../../src/dehydration/device/events.js";
import { DEHYDRATION_KEY_SECRET_NAMES } from "../../../src/dehydration/device/names.js";
import { createMatrixHttp } from "../../../src/http/matrix-http.js";
import { decodeBase64, encodeUnpaddedBase64 } from "../../../src/secret-storage/base64.js";
import { SecretStorage, type SecretStorageKey } from "../../../src/secret-storage/secret-storage.js";
import { createMockHomeserver } from "../../../src/testing/index.js";
import { systemClock } from "../../../src/time/clock.js";
import { InMemoryAccountData } from "../../secret-storage/in-memory-account-data.js";

/**
 * The manager's handling of the dehydration key: secret storage under both names, the crypto-store
 * cache, a key changed by another client, and names that disagree. The server is the in-process
 * mock; cross-signing keys exist only in the machine (enough to build devices).
 */

const { stable: STABLE, unstable: UNSTABLE } = DEHYDRATION_KEY_SECRET_NAMES;

beforeAll(async () => {
  await initAsync();
});

interface Setup {
  machine: OlmMachine;
  manager: DehydrationManager;
  storage: SecretStorage;
  ssKey: SecretStorageKey;
  seen: { name: keyof DehydrationEvents; payload: unknown }[];
  homeserver: ReturnType<typeof createMockHomeserver>;
  userId: string;
}

async function setup(): Promise<Setup> {
  const homeserver = createMockHomeserver();
  const user = homeserver.control.createUser("alice")!;
  const http = createMatrixHttp({
    baseUrl: homeserver.baseUrl,
    accessToken: user.accessToken,
    fetch: (request) => homeserver.fetch(request),
  });
  const machine = await createOlmMachine({ userId: user.userId, deviceId: user.deviceId });
  (await machine.bootstrapCrossSigning(true)).free();
  const storage = new SecretStorage(new InMemoryAccountData());
  const created = await storage.createKey();
  const ssKey = { keyId: created.keyId, key: created.key };
  const outgoingRequests = new OutgoingRequestLoop({ machine, http, clock: systemClock });
  const manager = new DehydrationManager({ machine, http, outgoingRequests, secretStorage: storage });
  const seen: Setup["seen"] = [];
  for (const name of ["uploaded", "deleted", "keyCached", "keyChanged", "validationFailed"] as const) {
    manager.events.on(name, (payload) => seen.push({ name, payload }));
  }
  return { machine, manager, storage, ssKey, seen, homeserver, userId: user.userId };
}

async function cachedKey(machine: OlmMachine): Promise<Uint8Array | undefined> {
  const cached = await machine.dehydratedDevices().getDehydratedDeviceKey();
  return cached === undefined ? undefined : decodeBase64(cached.toBase64());
}

const keyOf = (fill: number) => new Uint8Array(32).fill(fill);

describe("the dehydration key in secret storage", () => {
  it("is cached in the crypto store once, with one keyCached event", async () => {
    const s = await setup();
    await s.storage.store(STABLE, keyOf(1), s.ssKey);
    await s.storage.store(UNSTABLE, keyOf(1), s.ssKey);
    expect(await s.manager.loadKey({ secretStorageKey: s.ssKey })).toBe(true);
    expect(await cachedKey(s.machine)).toEqual(keyOf(1));
    expect(await s.manager.loadKey({ secretStorageKey: s.ssKey })).toBe(true);
    expect(s.seen).toEqual([{ name: "keyCached", payload: { source: "secret-storage" } }]);
  });

  it("is noticed when another client changed it, and the new key is cached", async () => {
    const s = await setup();
    await s.storage.store(UNSTABLE, keyOf(1), s.ssKey);
    await s.manager.loadKey({ secretStorageKey: s.ssKey });
    // Another client (Element writes only the unstable name) replaces the key.
    await s.storage.store(UNSTABLE, keyOf(2), s.ssKey);
    await s.storage.store(STABLE, keyOf(2), s.ssKey);
    await s.manager.loadKey({ secretStorageKey: s.ssKey });
    expect(await cachedKey(s.machine)).toEqual(keyOf(2));
    expect(s.seen.map((e) => e.name)).toEqual(["keyCached", "keyChanged", "keyCached"]);
  });

  it("read from the unstable name alone is written under the stable name as well", async () => {
    const s = await setup();
    await s.storage.store(UNSTABLE, keyOf(3), s.ssKey);
    await s.manager.loadKey({ secretStorageKey: s.ssKey });
    expect(await s.storage.get(STABLE, s.ssKey)).toBe(encodeUnpaddedBase64(keyOf(3)));
  });

  it("is absent without error when neither name holds it", async () => {
    const s = await setup();
    expect(await s.manager.loadKey({ secretStorageKey: s.ssKey })).toBe(false);
    expect(await cachedKey(s.machine)).toBeUndefined();
    expect(s.seen).toEqual([]);
  });

  it("of the wrong length is refused with a typed error and nothing is cached", async () => {
    const s = await setup();
    await s.storage.store(UNSTABLE, new Uint8Array(31).fill(4), s.ssKey);
    await expect(s.manager.loadKey({ secretStorageKey: s.ssKey })).rejects.toMatchObject({
      code: "invalid_key",
      details: { secretName: UNSTABLE, length: 31 },
    });
    expect(await cachedKey(s.machine)).toBeUndefined();
  });

  it("cannot be read without a secret-storage key", async () => {
    const s = await setup();
    await expect(s.manager.loadKey()).rejects.toMatchObject({ code: "no_secret_storage_key" });
  });

  it("is made, stored under both names and cached by the first upload", async () => {
    const s = await setup();
    const { deviceId } = await s.manager.createAndUpload({ secretStorageKey: s.ssKey });
    const stable = await s.storage.get(STABLE, s.ssKey);
    expect(stable).toMatch(/^[A-Za-z0-9+/]{43}$/);
    expect(await s.storage.get(UNSTABLE, s.ssKey)).toBe(stable);
    expect(await cachedKey(s.machine)).toEqual(decodeBase64(stable!));
    expect(s.homeserver.control.dehydratedDevice(s.userId)?.deviceId).toBe(deviceId);
    expect(s.seen.map((e) => e.name)).toEqual(["keyCached", "uploaded"]);
    expect(s.seen[0]!.payload).toEqual({ source: "created" });
  });

  it("is replaced by resetKey under both names", async () => {
    const s = await setup();
    await s.storage.store(STABLE, keyOf(5), s.ssKey);
    await s.storage.store(UNSTABLE, keyOf(5), s.ssKey);
    await s.manager.resetKey({ secretStorageKey: s.ssKey });
    const stable = await s.storage.get(STABLE, s.ssKey);
    expect(stable).not.toBe(encodeUnpaddedBase64(keyOf(5)));
    expect(await s.storage.get(UNSTABLE, s.ssKey)).toBe(stable);
    expect(await cachedKey(s.machine)).toEqual(decodeBase64(stable!));
  });
});

describe("names that disagree", () => {
  it("resolve to the key that opens the server's current device, which then goes under both names", async () => {
    const s = await setup();
    await s.storage.store(STABLE, keyOf(6), s.ssKey);
    await s.storage.store(UNSTABLE, keyOf(6), s.ssKey);
    await s.manager.createAndUpload({ secretStorageKey: s.ssKey });
    // A stale or foreign value under the name that would otherwise win.
    await s.storage.store(UNSTABLE, keyOf(7), s.ssKey);
    await s.manager.loadKey({ secretStorageKey: s.ssKey });
    expect(await cachedKey(s.machine)).toEqual(keyOf(6));
    expect(await s.storage.get(UNSTABLE, s.ssKey)).toBe(encodeUnpaddedBase64(keyOf(6)));
  });

  it("resolve to the unstable name's key when no device decides, and nothing is rewritten", async () => {
    const s = await setup();
    await s.storage.store(STABLE, keyOf(8), s.ssKey);
    await s.storage.store(UNSTABLE, keyOf(9), s.ssKey);
    await s.manager.loadKey({ secretStorageKey: s.ssKey });
    expect(await cachedKey(s.machine)).toEqual(keyOf(9));
    expect(await s.storage.get(STABLE, s.ssKey)).toBe(encodeUnpaddedBase64(keyOf(8)));
  });
});

describe("uploading without secret storage", () => {
  it("uses the cached key", async () => {
    const s = await setup();
    await s.machine
      .dehydratedDevices()
      .saveDehydratedDeviceKey(DehydratedDeviceKey.createKeyFromArray(keyOf(10)));
    const { deviceId } = await s.manager.createAndUpload();
    const stored = s.homeserver.control.dehydratedDevice(s.userId)!;
    expect(stored.deviceId).toBe(deviceId);
    const opened = await s.machine
      .dehydratedDevices()
      .rehydrate(
        DehydratedDeviceKey.createKeyFromArray(keyOf(10)),
        new DeviceId(deviceId),
        JSON.stringify(stored.deviceData),
      );
    opened.free();
  });

  it("refuses when no key is cached either, uploading nothing", async () => {
    const s = await setup();
    await expect(s.manager.createAndUpload()).rejects.toMatchObject({ code: "no_key" });
    expect(s.homeserver.control.dehydratedDevice(s.userId)).toBeUndefined();
  });
});
