import {
  DehydratedDeviceKey,
  DeviceId,
  initAsync,
  type OlmMachine,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { createOlmMachine } from "../../../src/crypto/olm-machine.js";
import { readOwnSelfSigningKey } from "../../../src/dehydration/device/device-facts.js";
import {
  buildDehydratedDeviceUpload,
  checkUploadBody,
} from "../../../src/dehydration/device/upload-request.js";
import type { PutDehydratedDeviceBody } from "../../../src/dehydration/device/wire-schemas.js";

/**
 * The PUT body, made by real crypto-wasm on an in-memory machine whose cross-signing keys exist
 * only locally (no server needed to build the request).
 */

const USER = "@alice:example.org";
let machine: OlmMachine;
let key: Uint8Array;
let body: PutDehydratedDeviceBody;

beforeAll(async () => {
  await initAsync();
  machine = await createOlmMachine({ userId: USER, deviceId: "ALICEDEVICE" });
  (await machine.bootstrapCrossSigning(true)).free();
  key = globalThis.crypto.getRandomValues(new Uint8Array(32));
  body = await buildDehydratedDeviceUpload(machine, key, "Alice's dehydrated device");
});

describe("the PUT /dehydrated_device body", () => {
  it("carries the display name the caller chose", () => {
    expect(body.initial_device_display_name).toBe("Alice's dehydrated device");
  });

  it("names the device after its Curve25519 key, with dehydrated: true inside the signed device keys", () => {
    const id = body.device_id;
    expect(body.device_keys).toMatchObject({ user_id: USER, device_id: id, dehydrated: true });
    expect(body.device_keys.keys[`curve25519:${id}`]).toBe(id);
    expect(body.device_keys.keys[`ed25519:${id}`]).toMatch(/^[A-Za-z0-9+/]{43}$/);
    expect(id).toMatch(/^[A-Za-z0-9+/]{43}$/);
  });

  it("is signed by the device itself and by our self-signing key", async () => {
    const ssk = await readOwnSelfSigningKey(machine);
    expect(ssk).toBeDefined();
    const signers = Object.keys(body.device_keys.signatures[USER] ?? {});
    expect(signers.sort()).toEqual([`ed25519:${body.device_id}`, `ed25519:${ssk}`].sort());
  });

  it("holds 50 signed one-time keys and one fallback key", () => {
    const otks = Object.entries(body.one_time_keys);
    expect(otks).toHaveLength(50);
    for (const [id, value] of otks) {
      expect(id).toMatch(/^signed_curve25519:/);
      expect(value).toMatchObject({ key: expect.any(String), signatures: { [USER]: expect.any(Object) } });
    }
    const fallback = Object.entries(body.fallback_keys);
    expect(fallback).toHaveLength(1);
    expect(fallback[0]![0]).toMatch(/^signed_curve25519:/);
    expect(fallback[0]![1]).toMatchObject({ key: expect.any(String), fallback: true });
  });

  it("holds device_data of the MSC3814 v2 algorithm that only the key opens", async () => {
    expect(body.device_data.algorithm).toBe("org.matrix.msc3814.v2");
    const devices = machine.dehydratedDevices();
    const data = JSON.stringify(body.device_data);
    const opened = await devices.rehydrate(
      DehydratedDeviceKey.createKeyFromArray(key),
      new DeviceId(body.device_id),
      data,
    );
    opened.free();
    const wrong = DehydratedDeviceKey.createKeyFromArray(new Uint8Array(32).fill(9));
    await expect(devices.rehydrate(wrong, new DeviceId(body.device_id), data)).rejects.toThrow();
  });

  it("never contains the dehydration key in the clear", () => {
    const keyText = Buffer.from(key).toString("base64").replace(/=+$/, "");
    expect(JSON.stringify(body)).not.toContain(keyText);
  });

  it("makes a new device every time", async () => {
    const again = await buildDehydratedDeviceUpload(machine, key, "x");
    expect(again.device_id).not.toBe(body.device_id);
  });
});

describe("building the body fails before anything is sent", () => {
  it("without the private self-signing key", async () => {
    const bare = await createOlmMachine({ userId: USER, deviceId: "NOCROSSSIGNING" });
    await expect(buildDehydratedDeviceUpload(bare, key, "name")).rejects.toMatchObject({
      name: "DehydrationError",
      code: "missing_self_signing_key",
    });
  });

  it("with a display name longer than servers accept", async () => {
    await expect(buildDehydratedDeviceUpload(machine, key, "x".repeat(101))).rejects.toMatchObject({
      code: "invalid_display_name",
    });
    await expect(buildDehydratedDeviceUpload(machine, key, "x".repeat(100))).resolves.toBeDefined();
  });

  it("with a key of the wrong length, which crypto-wasm refuses", async () => {
    await expect(buildDehydratedDeviceUpload(machine, new Uint8Array(16), "name")).rejects.toThrow();
  });
});

describe("checkUploadBody", () => {
  const variant = (change: (b: PutDehydratedDeviceBody) => void) => {
    const copy = structuredClone(body);
    change(copy);
    return JSON.stringify(copy);
  };

  it("accepts crypto-wasm's own body", () => {
    expect(checkUploadBody(JSON.stringify(body), USER)).toEqual(body);
  });

  it.each<[string, (b: PutDehydratedDeviceBody) => void, RegExp]>([
    [
      "the dehydrated flag is missing",
      (b) => delete (b.device_keys as { dehydrated?: true }).dehydrated,
      /dehydrated/,
    ],
    ["the device keys name another device", (b) => (b.device_keys.device_id = "OTHER"), /differs/],
    [
      "the device keys are another user's",
      (b) => (b.device_keys.user_id = "@eve:example.org"),
      /not our user/,
    ],
    ["the id is not the Curve25519 key", (b) => (b.device_id = "NOTTHEKEY"), /Curve25519/],
    ["there is no fallback key", (b) => (b.fallback_keys = {}), /fallback_keys/],
    ["there are no one-time keys", (b) => (b.one_time_keys = {}), /one_time_keys/],
    [
      "the display name key is missing",
      (b) => delete (b as Partial<PutDehydratedDeviceBody>).initial_device_display_name,
      /initial_device_display_name/,
    ],
  ])("refuses a body where %s, naming fields only", (_what, change, pattern) => {
    let error: unknown;
    try {
      checkUploadBody(variant(change), USER);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: "malformed_upload" });
    const message = (error as Error).message;
    expect(message).toMatch(pattern);
    expect(message).not.toContain(String(body.device_data.device_pickle));
  });

  it("refuses text that is not JSON", () => {
    expect(() => checkUploadBody("{", USER)).toThrow(expect.objectContaining({ code: "malformed_upload" }));
  });
});
