import { decodeBase64, encodeUnpaddedBase64 } from "./base64.js";
import { SecretStorageError } from "./errors.js";
import { subtleCrypto } from "./subtle-crypto.js";

/**
 * `m.secret_storage.v1.aes-hmac-sha2` (Client-Server spec, "Secrets" > "Encryption algorithms"), on
 * WebCrypto only:
 * 1. HKDF-SHA-256 over the storage key, salt = 32 zero bytes, info = the secret's name → 64 bytes:
 *    an AES-256 key, then an HMAC-SHA-256 key.
 * 2. A random 16-byte IV with bit 63 cleared.
 * 3. AES-CTR-256 over the plaintext → `ciphertext`.
 * 4. HMAC-SHA-256 over the raw ciphertext → `mac`.
 */
export const AES_HMAC_SHA2_ALGORITHM = "m.secret_storage.v1.aes-hmac-sha2";

const IV_LENGTH = 16;
const MAC_LENGTH = 32;
// HMAC zero-pads short keys to the hash block size, so this 32-byte zero salt is the same HKDF salt as
// the 8 zero bytes matrix-js-sdk passes; the interop tests pin that down.
const HKDF_SALT = new Uint8Array(32);

/** The wire form of one encryption of a secret; all three fields are base64. */
export interface AesHmacSha2Payload {
  iv: string;
  ciphertext: string;
  mac: string;
}

/** The key check stored in a key description. */
export interface KeyCheck {
  iv: string;
  mac: string;
}

interface DerivedKeys {
  aesKey: CryptoKey;
  hmacKey: CryptoKey;
}

async function deriveKeys(key: Uint8Array, name: string): Promise<DerivedKeys> {
  const s = subtleCrypto();
  const ikm = await s.importKey("raw", Uint8Array.from(key), "HKDF", false, ["deriveBits"]);
  const bits = await s.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: HKDF_SALT, info: new TextEncoder().encode(name) },
    ikm,
    512,
  );
  const [aesKey, hmacKey] = await Promise.all([
    s.importKey("raw", bits.slice(0, 32), { name: "AES-CTR" }, false, ["encrypt", "decrypt"]),
    s.importKey("raw", bits.slice(32, 64), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]),
  ]);
  return { aesKey, hmacKey };
}

/**
 * A fresh IV. Bit 63 (the top bit of the low 64-bit half) is cleared so the 64-bit block counter
 * never wraps into the high half: implementations that count over 64 bits (WebCrypto `length: 64`)
 * and over 128 bits (the Rust SDK, Android) then produce the same keystream.
 */
export function randomIv(): Uint8Array<ArrayBuffer> {
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(IV_LENGTH));
  iv[8] = iv[8]! & 0x7f;
  return iv;
}

async function encryptRaw(
  keys: DerivedKeys,
  plaintext: Uint8Array,
  iv: Uint8Array<ArrayBuffer>,
): Promise<{ ciphertext: Uint8Array<ArrayBuffer>; mac: Uint8Array<ArrayBuffer> }> {
  const s = subtleCrypto();
  const ciphertext = new Uint8Array(
    await s.encrypt({ name: "AES-CTR", counter: iv, length: 64 }, keys.aesKey, Uint8Array.from(plaintext)),
  );
  const mac = new Uint8Array(await s.sign("HMAC", keys.hmacKey, ciphertext));
  return { ciphertext, mac };
}

/**
 * Encrypts `plaintext` (a string is encoded as UTF-8, as every client does) for the secret `name`.
 * `iv` is for known-answer tests; production callers leave it out.
 */
export async function encryptAesHmacSha2(
  key: Uint8Array,
  name: string,
  plaintext: Uint8Array | string,
  iv: Uint8Array = randomIv(),
): Promise<AesHmacSha2Payload> {
  if (iv.length !== IV_LENGTH) throw new RangeError(`The IV must be ${IV_LENGTH} bytes`);
  const bytes = typeof plaintext === "string" ? new TextEncoder().encode(plaintext) : plaintext;
  const { ciphertext, mac } = await encryptRaw(await deriveKeys(key, name), bytes, Uint8Array.from(iv));
  return {
    iv: encodeUnpaddedBase64(iv),
    ciphertext: encodeUnpaddedBase64(ciphertext),
    mac: encodeUnpaddedBase64(mac),
  };
}

function decodeField(value: string, field: string, length?: number): Uint8Array<ArrayBuffer> {
  const bytes = decodeBase64(value);
  if (bytes === undefined || (length !== undefined && bytes.length !== length)) {
    throw new SecretStorageError("malformed", `The "${field}" field is not base64 of the expected length`, {
      details: { field },
    });
  }
  return bytes;
}

/**
 * Verifies the MAC (WebCrypto's `verify`, which compares in constant time) before decrypting, and
 * returns the plaintext bytes. A wrong key and a tampered ciphertext both give `bad_mac`.
 */
export async function decryptAesHmacSha2(
  key: Uint8Array,
  name: string,
  payload: AesHmacSha2Payload,
): Promise<Uint8Array<ArrayBuffer>> {
  const iv = decodeField(payload.iv, "iv", IV_LENGTH);
  const ciphertext = decodeField(payload.ciphertext, "ciphertext");
  const mac = decodeField(payload.mac, "mac", MAC_LENGTH);
  const s = subtleCrypto();
  const keys = await deriveKeys(key, name);
  if (!(await s.verify("HMAC", keys.hmacKey, mac, ciphertext))) {
    throw new SecretStorageError("bad_mac", `The MAC of secret "${name}" does not verify`, {
      details: { secretName: name },
    });
  }
  return new Uint8Array(
    await s.decrypt({ name: "AES-CTR", counter: iv, length: 64 }, keys.aesKey, ciphertext),
  );
}

// The key check encrypts 32 zero bytes under the empty secret name (spec: "For the purposes of
// allowing clients to check whether a user has correctly entered the key").
const KEY_CHECK_PLAINTEXT = new Uint8Array(32);

export async function computeKeyCheck(key: Uint8Array, iv: Uint8Array = randomIv()): Promise<KeyCheck> {
  const { iv: ivText, mac } = await encryptAesHmacSha2(key, "", KEY_CHECK_PLAINTEXT, iv);
  return { iv: ivText, mac };
}

/**
 * True when `key` reproduces the stored key check. The MAC comparison is WebCrypto's `verify`, so
 * it does not leak through timing how many bytes matched. A check whose iv or mac is not valid
 * base64 of the right length is `malformed`, not merely "wrong key".
 */
export async function verifyKeyCheck(key: Uint8Array, check: KeyCheck): Promise<boolean> {
  const iv = decodeField(check.iv, "iv", IV_LENGTH);
  const mac = decodeField(check.mac, "mac", MAC_LENGTH);
  const keys = await deriveKeys(key, "");
  const { ciphertext } = await encryptRaw(keys, KEY_CHECK_PLAINTEXT, iv);
  return subtleCrypto().verify("HMAC", keys.hmacKey, mac, ciphertext);
}
