import { base58 } from "@scure/base";
import { SecretStorageError } from "./errors.js";

/**
 * The recovery key format (Client-Server spec, appendices "Cryptographic key representation"): base58
 * (bitcoin alphabet) of the two-byte prefix 0x8B 0x01, the key, and a parity byte that is the XOR of
 * every byte before it; shown in groups of four characters separated by spaces.
 */

const PREFIX = [0x8b, 0x01] as const;
export const SECRET_STORAGE_KEY_LENGTH = 32;
const ENCODED_LENGTH = PREFIX.length + SECRET_STORAGE_KEY_LENGTH + 1;

/** The 32-byte key as a recovery key for the user to write down (groups of four). Never log it. */
export function encodeRecoveryKey(key: Uint8Array): string {
  if (key.length !== SECRET_STORAGE_KEY_LENGTH) {
    throw new SecretStorageError(
      "recovery_key_bad_length",
      `A recovery key encodes exactly ${SECRET_STORAGE_KEY_LENGTH} bytes`,
      { details: { length: key.length } },
    );
  }
  const buf = new Uint8Array(ENCODED_LENGTH);
  buf.set(PREFIX, 0);
  buf.set(key, PREFIX.length);
  buf[ENCODED_LENGTH - 1] = xorAll(buf.subarray(0, ENCODED_LENGTH - 1));
  return groupsOfFour(base58.encode(buf));
}

/**
 * Decodes what a user typed or pasted: any whitespace is ignored. Errors say what is wrong but never
 * repeat the input.
 */
export function decodeRecoveryKey(recoveryKey: string): Uint8Array<ArrayBuffer> {
  const compact = recoveryKey.replace(/\s+/g, "");
  let bytes: Uint8Array;
  try {
    bytes = base58.decode(compact);
  } catch {
    throw new SecretStorageError("recovery_key_bad_base58", "The recovery key contains invalid characters");
  }
  if (bytes.length !== ENCODED_LENGTH) {
    throw new SecretStorageError("recovery_key_bad_length", "The recovery key has the wrong length", {
      details: { decodedLength: bytes.length, expectedLength: ENCODED_LENGTH },
    });
  }
  if (bytes[0] !== PREFIX[0] || bytes[1] !== PREFIX[1]) {
    throw new SecretStorageError("recovery_key_bad_prefix", "This is not a recovery key (wrong prefix)");
  }
  if (xorAll(bytes) !== 0) {
    throw new SecretStorageError(
      "recovery_key_bad_parity",
      "The recovery key's check byte does not match; it was probably mistyped",
    );
  }
  return Uint8Array.from(bytes.subarray(PREFIX.length, PREFIX.length + SECRET_STORAGE_KEY_LENGTH));
}

function xorAll(bytes: Uint8Array): number {
  let parity = 0;
  for (const b of bytes) parity ^= b;
  return parity;
}

function groupsOfFour(text: string): string {
  return (text.match(/.{1,4}/g) ?? []).join(" ");
}
