import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  parseDehydrationKey,
  readDehydrationKeys,
  sameKey,
} from "../../../src/dehydration/device/dehydration-key.js";
import { isDehydrationError } from "../../../src/dehydration/device/errors.js";
import { DEHYDRATION_KEY_SECRET_NAMES } from "../../../src/dehydration/device/names.js";
import { encodeUnpaddedBase64 } from "../../../src/secret-storage/base64.js";

const STABLE = DEHYDRATION_KEY_SECRET_NAMES.stable;
const UNSTABLE = DEHYDRATION_KEY_SECRET_NAMES.unstable;

const bytes = (n: number, fill = 7) => new Uint8Array(n).fill(fill);
const b64 = (n: number, fill = 7) => encodeUnpaddedBase64(bytes(n, fill));

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

describe("parseDehydrationKey", () => {
  it("accepts the unpadded base64 of 32 bytes, as every client writes it", () => {
    const key = globalThis.crypto.getRandomValues(new Uint8Array(32));
    const text = encodeUnpaddedBase64(key);
    expect(text).toHaveLength(43);
    expect(parseDehydrationKey(text, UNSTABLE)).toEqual(key);
  });

  it("accepts the padded form too, as the spec's base64 appendix asks of decoders", () => {
    expect(parseDehydrationKey(`${b64(32)}=`, STABLE)).toEqual(bytes(32));
  });

  it.each([0, 1, 16, 31, 33, 64])("refuses a %i-byte key with a typed error naming the length", (n) => {
    const error = caught(() => parseDehydrationKey(b64(n), STABLE));
    expect(isDehydrationError(error)).toBe(true);
    expect(error).toMatchObject({
      code: "invalid_key",
      details: { secretName: STABLE, problem: "wrong_length", length: n },
    });
  });

  it("refuses text that is not base64, without echoing it", () => {
    const secretish = "not*base64!but-looks-like-a-secret";
    const error = caught(() => parseDehydrationKey(secretish, UNSTABLE)) as Error;
    expect(error).toMatchObject({
      code: "invalid_key",
      details: { secretName: UNSTABLE, problem: "not_base64" },
    });
    expect(error.message).not.toContain(secretish);
    expect(JSON.stringify((error as unknown as { details: unknown }).details)).not.toContain(secretish);
  });

  it("never puts the key into the message of a wrong-length error", () => {
    const text = b64(33, 0xab);
    const error = caught(() => parseDehydrationKey(text, STABLE)) as Error;
    expect(error.message).not.toContain(text);
    expect(error.message).toContain("33 bytes");
  });

  it("round-trips any 32 bytes and refuses every other length", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 80 }), (key) => {
        const text = encodeUnpaddedBase64(key);
        if (key.length === 32) {
          expect(parseDehydrationKey(text, STABLE)).toEqual(key);
        } else {
          expect(() => parseDehydrationKey(text, STABLE)).toThrow(/bytes long/);
        }
      }),
    );
  });
});

describe("readDehydrationKeys", () => {
  it("finds nothing when neither name is stored", () => {
    expect(readDehydrationKeys({ stable: undefined, unstable: undefined })).toEqual({
      candidates: [],
      invalid: [],
      absent: [UNSTABLE, STABLE],
    });
  });

  it("reads one key held under both names as one candidate", () => {
    const reading = readDehydrationKeys({ stable: b64(32, 1), unstable: b64(32, 1) });
    expect(reading.candidates).toEqual([{ key: bytes(32, 1), names: [UNSTABLE, STABLE] }]);
    expect(reading.absent).toEqual([]);
  });

  it("reads a key stored only under the stable name", () => {
    const reading = readDehydrationKeys({ stable: b64(32, 2), unstable: undefined });
    expect(reading.candidates).toEqual([{ key: bytes(32, 2), names: [STABLE] }]);
    expect(reading.absent).toEqual([UNSTABLE]);
  });

  it("reads a key stored only under the unstable name, as Element stores it", () => {
    const reading = readDehydrationKeys({ stable: undefined, unstable: b64(32, 3) });
    expect(reading.candidates).toEqual([{ key: bytes(32, 3), names: [UNSTABLE] }]);
    expect(reading.absent).toEqual([STABLE]);
  });

  it("keeps both keys when the names disagree, the unstable name's first", () => {
    const reading = readDehydrationKeys({ stable: b64(32, 4), unstable: b64(32, 5) });
    expect(reading.candidates).toEqual([
      { key: bytes(32, 5), names: [UNSTABLE] },
      { key: bytes(32, 4), names: [STABLE] },
    ]);
  });

  it("uses the good key under one name when the other holds a key of the wrong length", () => {
    const reading = readDehydrationKeys({ stable: b64(32, 6), unstable: b64(16) });
    expect(reading.candidates).toEqual([{ key: bytes(32, 6), names: [STABLE] }]);
    expect(reading.invalid).toHaveLength(1);
    expect(reading.invalid[0]).toMatchObject({ name: UNSTABLE, error: { code: "invalid_key" } });
  });

  it("throws the typed error when the only stored values are not keys, so junk never reads as no key", () => {
    expect(() => readDehydrationKeys({ stable: undefined, unstable: b64(31) })).toThrow(
      expect.objectContaining({
        code: "invalid_key",
        details: expect.objectContaining({ secretName: UNSTABLE }),
      }),
    );
    expect(() => readDehydrationKeys({ stable: "%%%", unstable: b64(48) })).toThrow(
      expect.objectContaining({ code: "invalid_key" }),
    );
  });
});

describe("sameKey", () => {
  it("compares bytes and lengths", () => {
    expect(sameKey(bytes(32, 1), bytes(32, 1))).toBe(true);
    expect(sameKey(bytes(32, 1), bytes(32, 2))).toBe(false);
    expect(sameKey(bytes(32, 1), bytes(31, 1))).toBe(false);
    const a = bytes(32, 1);
    const b = bytes(32, 1);
    b[31] = 0;
    expect(sameKey(a, b)).toBe(false);
  });
});
