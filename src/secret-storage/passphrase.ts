import { subtleCrypto } from "./subtle-crypto.js";

/**
 * Keys derived from a passphrase (Client-Server spec, "Secrets" > "Deriving keys from passphrases"):
 * PBKDF2 with SHA-512, the salt used as its UTF-8 bytes, `bits` defaulting to 256. The parameters
 * live in the key description's `passphrase` field as `{algorithm: "m.pbkdf2", salt, iterations}`.
 */
export const PBKDF2_ALGORITHM = "m.pbkdf2";
export const DEFAULT_PASSPHRASE_ITERATIONS = 500_000;
const DEFAULT_BITS = 256;

/** The `m.pbkdf2` parameters of a key description's `passphrase` field. */
export interface PassphraseInfo {
  algorithm: typeof PBKDF2_ALGORITHM;
  salt: string;
  iterations: number;
  bits?: number;
}

export async function deriveKeyFromPassphrase(
  passphrase: string,
  info: Pick<PassphraseInfo, "salt" | "iterations" | "bits">,
): Promise<Uint8Array<ArrayBuffer>> {
  const s = subtleCrypto();
  const material = await s.importKey("raw", new TextEncoder().encode(passphrase), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await s.deriveBits(
    {
      name: "PBKDF2",
      hash: "SHA-512",
      salt: new TextEncoder().encode(info.salt),
      iterations: info.iterations,
    },
    material,
    info.bits ?? DEFAULT_BITS,
  );
  return new Uint8Array(bits);
}

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A uniformly random alphanumeric string (rejection sampling, so no modulo bias). */
export function randomAlphanumeric(length: number): string {
  let out = "";
  const limit = 256 - (256 % ALPHANUMERIC.length);
  while (out.length < length) {
    for (const b of globalThis.crypto.getRandomValues(new Uint8Array(length * 2))) {
      if (b < limit && out.length < length) out += ALPHANUMERIC[b % ALPHANUMERIC.length];
    }
  }
  return out;
}
