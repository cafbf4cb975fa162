import { isSecretStorageError } from "../../secret-storage/errors.js";
import type { SecretStorage, SecretStorageKey } from "../../secret-storage/secret-storage.js";
import { DEHYDRATION_KEY_SECRET_NAMES, type DehydrationKeySecretName } from "./names.js";

/** The decrypted texts under both names; `undefined` where nothing readable is stored. */
export interface DehydrationKeyTexts {
  stable: string | undefined;
  unstable: string | undefined;
}

/**
 * Reads the dehydration key under both names. A secret encrypted only for another secret-storage
 * key (left behind when the user replaced their key and a client rewrote just one name) cannot be
 * read with this one and counts as absent; the caller rewrites it. A wrong key or tampering
 * (`bad_mac`) is an error, never "absent".
 */
export async function readDehydrationKeyTexts(
  storage: SecretStorage,
  key: SecretStorageKey,
): Promise<DehydrationKeyTexts> {
  const read = async (name: DehydrationKeySecretName) => {
    try {
      return await storage.get(name, key);
    } catch (error) {
      if (isSecretStorageError(error) && error.code === "not_stored") return undefined;
      throw error;
    }
  };
  // Two independent account-data reads: one round trip, not two.
  const [stable, unstable] = await Promise.all([
    read(DEHYDRATION_KEY_SECRET_NAMES.stable),
    read(DEHYDRATION_KEY_SECRET_NAMES.unstable),
  ]);
  return { stable, unstable };
}

/** Writes the key (as unpadded base64, what Element reads) under the given names, both by default. */
export async function writeDehydrationKey(
  storage: SecretStorage,
  dehydrationKey: Uint8Array,
  keys: SecretStorageKey | readonly SecretStorageKey[],
  names: readonly DehydrationKeySecretName[] = Object.values(DEHYDRATION_KEY_SECRET_NAMES),
): Promise<void> {
  for (const name of names) await storage.store(name, dehydrationKey, keys);
}
