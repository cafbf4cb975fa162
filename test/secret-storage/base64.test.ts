import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeBase64, encodeUnpaddedBase64 } from "../../src/secret-storage/base64.js";

describe("base64", () => {
  it("writes unpadded standard base64, as Node's encoder does less its padding", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70 }), (bytes) => {
        const text = encodeUnpaddedBase64(bytes);
        expect(text).toBe(Buffer.from(bytes).toString("base64").replace(/=+$/, ""));
        expect(decodeBase64(text)).toEqual(bytes);
        expect(decodeBase64(Buffer.from(bytes).toString("base64"))).toEqual(bytes);
      }),
    );
  });

  it("gives fresh bytes of their own buffer", () => {
    const bytes = decodeBase64("AAEC");
    expect(bytes).toEqual(Uint8Array.of(0, 1, 2));
    expect(bytes!.byteOffset).toBe(0);
    expect(bytes!.buffer.byteLength).toBe(3);
  });

  it("ignores the unused low bits of the last character, as atob and Buffer do", () => {
    expect(decodeBase64("QQ")).toEqual(Uint8Array.of(0x41));
    expect(decodeBase64("QR")).toEqual(Uint8Array.of(0x41));
    expect(decodeBase64("QR==")).toEqual(Uint8Array.of(0x41));
    expect(decodeBase64("QUF")).toEqual(Uint8Array.of(0x41, 0x41));
    expect(decodeBase64("QUH")).toEqual(Uint8Array.of(0x41, 0x41));
    expect(decodeBase64("QU/=")).toEqual(Uint8Array.of(0x41, 0x4f));
  });

  it.each([
    ["a lone character in the last quantum", "QUFBQ"],
    ["padding that does not complete the quantum", "QQ="],
    ["padding after a full quantum", "QUFB=="],
    ["too much padding", "Q==="],
    ["padding in the middle", "QQ==QUFB"],
    ["whitespace", "QUFB QUFB"],
    ["a trailing newline", "QUFB\n"],
    ["the URL-safe alphabet", "-_-_"],
    ["another character", "QUF*"],
    ["a non-ASCII character", "QUFé"],
  ])("refuses %s", (_label, text) => {
    expect(decodeBase64(text)).toBeUndefined();
  });

  it("decodes the empty string to no bytes", () => {
    expect(decodeBase64("")).toEqual(new Uint8Array(0));
  });
});
