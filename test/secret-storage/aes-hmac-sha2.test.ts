import { calculateKeyCheck as jsSdkCalculateKeyCheck } from "matrix-js-sdk/lib/secret-storage.js";
import jsSdkDecrypt from "matrix-js-sdk/lib/utils/decryptAESSecretStorageItem.js";
import jsSdkEncrypt from "matrix-js-sdk/lib/utils/encryptAESSecretStorageItem.js";
import { describe, expect, it } from "vitest";
import {
  computeKeyCheck,
  decryptAesHmacSha2,
  encryptAesHmacSha2,
  randomIv,
  verifyKeyCheck,
} from "../../src/secret-storage/aes-hmac-sha2.js";
import { decodeBase64, encodeUnpaddedBase64 } from "../../src/secret-storage/base64.js";
import { isSecretStorageError } from "../../src/secret-storage/errors.js";

const unpad = (s: string) => s.replace(/=+$/, "");
const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (e) {
    if (isSecretStorageError(e)) return e.code;
    throw e;
  }
  return "no error";
}

// Known answers are computed by matrix-js-sdk at test time from the same key, name, IV and text, so
// they pin our output to the implementation every Element client runs, not to our own earlier output.
const cases = [
  {
    label: "a cross-signing seed under its secret name",
    name: "m.cross_signing.master",
    text: "x".repeat(43),
  },
  { label: "an empty secret name", name: "", text: "hello" },
  { label: "a non-ASCII name and text", name: "org.example.sécret", text: "clé 🔑 ünïcode" },
  { label: "a multi-block text", name: "m.megolm_backup.v1", text: `${"0123456789abcdef".repeat(9)}tail` },
  { label: "an empty text", name: "org.matrix.msc3814", text: "" },
];

describe("m.secret_storage.v1.aes-hmac-sha2", () => {
  for (const c of cases) {
    it(`matches matrix-js-sdk's encryption for ${c.label}`, async () => {
      const key = bytes(32, c.name.length);
      const iv = randomIv();
      const theirs = await jsSdkEncrypt(c.text, Uint8Array.from(key), c.name, encodeUnpaddedBase64(iv));
      const ours = await encryptAesHmacSha2(key, c.name, c.text, iv);
      expect(ours).toEqual({
        iv: unpad(theirs.iv),
        ciphertext: unpad(theirs.ciphertext),
        mac: unpad(theirs.mac),
      });
      expect(new TextDecoder().decode(await decryptAesHmacSha2(key, c.name, theirs))).toBe(c.text);
      expect(await jsSdkDecrypt(ours, Uint8Array.from(key), c.name)).toBe(c.text);
    });
  }

  it("computes the same key check as matrix-js-sdk (32 zero bytes under the empty name)", async () => {
    const key = bytes(32, 5);
    const iv = randomIv();
    const theirs = await jsSdkCalculateKeyCheck(Uint8Array.from(key), encodeUnpaddedBase64(iv));
    const ours = await computeKeyCheck(key, iv);
    expect(ours).toEqual({ iv: unpad(theirs.iv), mac: unpad(theirs.mac) });
    expect(await verifyKeyCheck(key, { iv: theirs.iv, mac: theirs.mac })).toBe(true);
  });

  it("verifies a key check only with the right key", async () => {
    const key = bytes(32, 1);
    const check = await computeKeyCheck(key);
    expect(await verifyKeyCheck(key, check)).toBe(true);
    expect(await verifyKeyCheck(bytes(32, 2), check)).toBe(false);
  });

  it("draws IVs of 16 bytes with bit 63 cleared, and different every time", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 64; i++) {
      const { iv } = await encryptAesHmacSha2(bytes(32, 0), "n", "t");
      const raw = decodeBase64(iv)!;
      expect(raw.length).toBe(16);
      expect(raw[8]! & 0x80).toBe(0);
      seen.add(iv);
    }
    expect(seen.size).toBe(64);
  });

  it("writes unpadded base64 and reads padded base64", async () => {
    const key = bytes(32, 9);
    const ours = await encryptAesHmacSha2(key, "n", "abcde");
    for (const field of [ours.iv, ours.ciphertext, ours.mac]) expect(field).not.toContain("=");
    const padded = await jsSdkEncrypt("abcde", Uint8Array.from(key), "n");
    expect(padded.iv.endsWith("==")).toBe(true);
    expect(new TextDecoder().decode(await decryptAesHmacSha2(key, "n", padded))).toBe("abcde");
  });

  it("rejects a wrong key, a wrong secret name, and any tampering with bad_mac", async () => {
    const key = bytes(32, 3);
    const payload = await encryptAesHmacSha2(key, "m.cross_signing.master", "seed-seed-seed");
    expect(await codeOf(decryptAesHmacSha2(bytes(32, 4), "m.cross_signing.master", payload))).toBe("bad_mac");
    expect(await codeOf(decryptAesHmacSha2(key, "m.cross_signing.self_signing", payload))).toBe("bad_mac");

    const ct = decodeBase64(payload.ciphertext)!;
    ct[0] = ct[0]! ^ 1;
    const tampered = { ...payload, ciphertext: encodeUnpaddedBase64(ct) };
    expect(await codeOf(decryptAesHmacSha2(key, "m.cross_signing.master", tampered))).toBe("bad_mac");

    const mac = decodeBase64(payload.mac)!;
    mac[31] = mac[31]! ^ 0x80;
    const badMac = { ...payload, mac: encodeUnpaddedBase64(mac) };
    expect(await codeOf(decryptAesHmacSha2(key, "m.cross_signing.master", badMac))).toBe("bad_mac");
  });

  it("rejects fields that are not base64 of the right length as malformed", async () => {
    const key = bytes(32, 3);
    const payload = await encryptAesHmacSha2(key, "n", "t");
    const variants = [
      { ...payload, iv: encodeUnpaddedBase64(new Uint8Array(12)) },
      { ...payload, mac: encodeUnpaddedBase64(new Uint8Array(16)) },
      { ...payload, ciphertext: "not*base64" },
      { ...payload, iv: `${payload.iv} ` },
      { ...payload, mac: "A" },
    ];
    for (const v of variants) expect(await codeOf(decryptAesHmacSha2(key, "n", v))).toBe("malformed");
    expect(await codeOf(verifyKeyCheck(key, { iv: "!!", mac: payload.mac }))).toBe("malformed");
  });
});
