import { decodeBase64 } from "../../secret-storage/base64.js";
import { DehydrationError } from "./errors.js";
import {
  DEHYDRATION_KEY_LENGTH,
  DEHYDRATION_KEY_SECRET_NAMES,
  type DehydrationKeySecretName,
} from "./names.js";

/**
 * The dehydration key as secret storage holds it (MSC3814, "Storing the dehydration key"): the
 * base64 of exactly 32 bytes. Unpadded is what every client writes; padded is accepted too, since
 * the spec's base64 appendix asks decoders to take both. Anything else is refused with a typed error
 * that names the secret and the problem, never the value.
 */
export function parseDehydrationKey(text: string, secretName: DehydrationKeySecretName): Uint8Array {
  const bytes = typeof text === "string" ? decodeBase64(text.trim()) : undefined;
  if (bytes === undefined) {
    throw new DehydrationError("invalid_key", `The dehydration key in "${secretName}" is not base64`, {
      details: { secretName, problem: "not_base64" },
    });
  }
  if (bytes.length !== DEHYDRATION_KEY_LENGTH) {
    const length = bytes.length;
    bytes.fill(0);
    throw new DehydrationError(
      "invalid_key",
      `The dehydration key in "${secretName}" is ${length} bytes long, not ${DEHYDRATION_KEY_LENGTH}`,
      { details: { secretName, problem: "wrong_length", length } },
    );
  }
  return bytes;
}

/** One distinct key found in secret storage, with every name that holds it. */
export interface DehydrationKeyCandidate {
  key: Uint8Array;
  names: DehydrationKeySecretName[];
}

/** What the two secret-storage names hold, sorted out. */
export interface DehydrationKeyReading {
  /**
   * The distinct valid keys: none, one (both names agree, or only one is set) or two (the names
   * disagree). With two, the unstable name's key comes first: Element writes only that name, so
   * when they differ it is the likelier to be the newer one.
   */
  candidates: DehydrationKeyCandidate[];
  /** Names that hold something other than a 32-byte key, with the typed error for each. */
  invalid: { name: DehydrationKeySecretName; error: DehydrationError }[];
  /** Names with no secret stored. */
  absent: DehydrationKeySecretName[];
}

/**
 * Sorts out the decrypted texts under both names (`undefined` = not stored). A bad value under one
 * name does not hide a good key under the other; when no name holds a good key but one holds a bad
 * value, that value's `invalid_key` error is thrown, so junk never reads as "no key".
 */
export function readDehydrationKeys(texts: {
  stable: string | undefined;
  unstable: string | undefined;
}): DehydrationKeyReading {
  const reading: DehydrationKeyReading = { candidates: [], invalid: [], absent: [] };
  // Unstable first: its key leads when the two disagree (see `candidates`).
  for (const which of ["unstable", "stable"] as const) {
    const name = DEHYDRATION_KEY_SECRET_NAMES[which];
    const text = texts[which];
    if (text === undefined) {
      reading.absent.push(name);
      continue;
    }
    let key: Uint8Array;
    try {
      key = parseDehydrationKey(text, name);
    } catch (error) {
      reading.invalid.push({ name, error: error as DehydrationError });
      continue;
    }
    const same = reading.candidates.find((c) => sameKey(c.key, key));
    if (same) {
      same.names.push(name);
      key.fill(0);
    } else {
      reading.candidates.push({ key, names: [name] });
    }
  }
  const firstInvalid = reading.invalid[0];
  if (reading.candidates.length === 0 && firstInvalid !== undefined) throw firstInvalid.error;
  return reading;
}

/** Byte equality without an early exit, so the comparison time does not depend on where keys differ. */
export function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}
