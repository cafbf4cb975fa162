/**
 * Base64 for secret storage. The spec says "base64" for iv/ciphertext/mac without fixing padding;
 * matrix-js-sdk writes padded, the Rust SDK unpadded. The appendix ("Unpadded Base64") says encoders
 * emit unpadded and decoders accept both, so we do exactly that. Decoding is strict otherwise
 * (standard alphabet only, no whitespace) because every input here is untrusted account data.
 */

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function encodeUnpaddedBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/=+$/, "");
}

/** Returns `undefined` for anything that is not standard base64 (padded or not). */
export function decodeBase64(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!BASE64.test(text)) return undefined;
  const unpadded = text.replace(/=+$/, "");
  if (unpadded.length % 4 === 1) return undefined;
  // Padding, when present, must complete the last quantum exactly.
  if (unpadded.length !== text.length && text.length % 4 !== 0) return undefined;
  const binary = atob(unpadded);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
