import { base64nopad } from "@scure/base";

/**
 * Base64 for secret storage and Matrix keys. The spec says "base64" for iv/ciphertext/mac without
 * fixing padding; matrix-js-sdk writes padded, the Rust SDK unpadded. The appendix ("Unpadded
 * Base64") says encoders emit unpadded and decoders accept both, so we do exactly that. Decoding is
 * strict otherwise (standard alphabet only, no whitespace, no URL-safe `-`/`_`) because every input
 * here is untrusted account data.
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const STANDARD_UNPADDED = /^[A-Za-z0-9+/]*$/;

export function encodeUnpaddedBase64(bytes: Uint8Array): string {
  return base64nopad.encode(bytes);
}

/** Returns `undefined` for anything that is not standard base64 (padded or not). */
export function decodeBase64(text: string): Uint8Array<ArrayBuffer> | undefined {
  const unpadded = text.replace(/={1,2}$/, "");
  // Padding, when present, must complete the last quantum exactly.
  if (unpadded.length !== text.length && text.length % 4 !== 0) return undefined;
  if (!STANDARD_UNPADDED.test(unpadded) || unpadded.length % 4 === 1) return undefined;
  try {
    return Uint8Array.from(base64nopad.decode(withoutTrailingBits(unpadded)));
  } catch {
    return undefined;
  }
}

/**
 * The codec rejects a last character whose unused low bits are not zero (RFC 4648 §3.5 lets
 * decoders choose); `atob` and `Buffer`, which other clients decode with, ignore those bits. They
 * are cleared first, so such text decodes here to the bytes it gives there.
 */
function withoutTrailingBits(unpadded: string): string {
  const rest = unpadded.length % 4;
  if (rest === 0) return unpadded;
  const unusedBits = rest === 2 ? 4 : 2;
  const last = ALPHABET.indexOf(unpadded.charAt(unpadded.length - 1));
  return unpadded.slice(0, -1) + ALPHABET.charAt(last & ~((1 << unusedBits) - 1));
}
