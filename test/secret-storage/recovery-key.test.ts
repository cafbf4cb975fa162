import { base58 } from "@scure/base";
import fc from "fast-check";
import {
  decodeRecoveryKey as jsSdkDecodeRecoveryKey,
  encodeRecoveryKey as jsSdkEncodeRecoveryKey,
} from "matrix-js-sdk/lib/crypto-api/index.js";
import { describe, expect, it } from "vitest";
import { isSecretStorageError, type SecretStorageErrorCode } from "../../src/secret-storage/errors.js";
import { decodeRecoveryKey, encodeRecoveryKey } from "../../src/secret-storage/recovery-key.js";

const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

/** Builds base58 of arbitrary bytes, with the parity byte computed unless told otherwise. */
function rawRecoveryKey(body: number[], { fixParity = true } = {}): string {
  const bytes = [...body];
  if (fixParity) bytes.push(bytes.reduce((a, b) => a ^ b, 0));
  return base58.encode(Uint8Array.from(bytes));
}

function decodeError(text: string): { code: SecretStorageErrorCode; message: string } {
  try {
    decodeRecoveryKey(text);
  } catch (e) {
    if (isSecretStorageError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error("decodeRecoveryKey accepted the input");
}

describe("recovery key", () => {
  it("round-trips every 32-byte key", () => {
    fc.assert(
      fc.property(key32, (key) => {
        expect(decodeRecoveryKey(encodeRecoveryKey(key))).toEqual(key);
      }),
    );
  });

  it("encodes exactly as matrix-js-sdk does, and each side decodes the other's", () => {
    fc.assert(
      fc.property(key32, (key) => {
        const ours = encodeRecoveryKey(key);
        expect(ours).toBe(jsSdkEncodeRecoveryKey(key));
        expect(jsSdkDecodeRecoveryKey(ours)).toEqual(key);
        expect(decodeRecoveryKey(jsSdkEncodeRecoveryKey(key)!)).toEqual(key);
      }),
      { numRuns: 200 },
    );
  });

  it("is shown in groups of four characters separated by single spaces", () => {
    const text = encodeRecoveryKey(new Uint8Array(32).fill(7));
    expect(text).toMatch(/^([1-9A-HJ-NP-Za-km-z]{4} )+[1-9A-HJ-NP-Za-km-z]{1,4}$/);
    expect(text.startsWith("Es")).toBe(true); // the 0x8B01 prefix always encodes as "Es.."
  });

  it("decodes with any whitespace, or none, between the characters", () => {
    const key = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
    const text = encodeRecoveryKey(key);
    const compact = text.replace(/ /g, "");
    expect(decodeRecoveryKey(compact)).toEqual(key);
    expect(decodeRecoveryKey(`  ${text.replace(/ /g, "\n\t ")}\n`)).toEqual(key);
  });

  it("rejects characters outside the base58 alphabet without echoing the key", () => {
    const text = encodeRecoveryKey(new Uint8Array(32).fill(1));
    const withZero = `0${text.slice(1)}`;
    const error = decodeError(withZero);
    expect(error.code).toBe("recovery_key_bad_base58");
    expect(error.message).not.toContain(withZero.slice(1, 12));
    expect(decodeError(text.replace(/.$/, "l")).code).toBe("recovery_key_bad_base58");
  });

  it("rejects a wrong prefix", () => {
    expect(decodeError(rawRecoveryKey([0x8b, 0x02, ...new Array(32).fill(9)])).code).toBe(
      "recovery_key_bad_prefix",
    );
    expect(decodeError(rawRecoveryKey([0x01, 0x8b, ...new Array(32).fill(9)])).code).toBe(
      "recovery_key_bad_prefix",
    );
  });

  it("rejects a wrong parity byte, as a single mistyped byte causes", () => {
    const body = [0x8b, 0x01, ...new Array(32).fill(0x42)];
    const parity = body.reduce((a, b) => a ^ b, 0);
    const text = rawRecoveryKey([...body, parity ^ 0x01], { fixParity: false });
    const error = decodeError(text);
    expect(error.code).toBe("recovery_key_bad_parity");
    expect(error.message).not.toContain(text.slice(0, 12));
  });

  it("rejects keys that decode to the wrong length", () => {
    expect(decodeError(rawRecoveryKey([0x8b, 0x01, ...new Array(31).fill(3)])).code).toBe(
      "recovery_key_bad_length",
    );
    expect(decodeError(rawRecoveryKey([0x8b, 0x01, ...new Array(33).fill(3)])).code).toBe(
      "recovery_key_bad_length",
    );
    expect(decodeError("").code).toBe("recovery_key_bad_length");
    expect(decodeError("   ").code).toBe("recovery_key_bad_length");
  });

  it("refuses to encode a key that is not 32 bytes", () => {
    expect(() => encodeRecoveryKey(new Uint8Array(16))).toThrowError(
      expect.objectContaining({ code: "recovery_key_bad_length" }),
    );
  });
});
