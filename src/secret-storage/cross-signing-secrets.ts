import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import { type CrossSigningKeyStatus, readCrossSigningStatus } from "../crypto/cross-signing.js";
import { decodeBase64 } from "./base64.js";
import { SecretStorageError } from "./errors.js";
import type { SecretStorage, SecretStorageKey } from "./secret-storage.js";

/**
 * The private cross-signing keys in secret storage (Client-Server spec, "Secrets" > "Predefined
 * secrets"): each is the unpadded base64 seed of an Ed25519 key, stored under its `m.cross_signing.*`
 * name. A new login restores them so it can sign again; without the self-signing key it can neither
 * cross-sign its own devices nor create a dehydrated device (MSC3814).
 */
export const CROSS_SIGNING_SECRET_NAMES = {
  master: "m.cross_signing.master",
  selfSigning: "m.cross_signing.self_signing",
  userSigning: "m.cross_signing.user_signing",
} as const;

/** `master`, `selfSigning` or `userSigning`. */
export type CrossSigningKeyRole = keyof typeof CROSS_SIGNING_SECRET_NAMES;
const ROLES = Object.keys(CROSS_SIGNING_SECRET_NAMES) as CrossSigningKeyRole[];

/** What `restoreCrossSigningKeys` found and what the machine holds afterwards. */
export interface CrossSigningRestoreResult {
  /** Roles whose secret was found in storage and decrypted. */
  found: CrossSigningKeyRole[];
  /**
   * What the machine holds after the import. crypto-wasm imports a key only if it matches the
   * public identity the machine already knows, so a `found` role that is `false` here means the
   * machine has not yet queried its own user's keys (let its outgoing requests run first). Keys of
   * another identity are the `cross_signing_mismatch` error.
   */
  status: CrossSigningKeyStatus;
}

type ExportingMachine = Pick<OlmMachine, "exportCrossSigningKeys">;
type ImportingMachine = Pick<OlmMachine, "importCrossSigningKeys">;

/**
 * Stores every private cross-signing key the machine holds under `keys`, and returns the roles
 * stored. `no_cross_signing_keys` when it holds none (bootstrap cross-signing first).
 */
export async function storeCrossSigningKeys(
  machine: ExportingMachine,
  storage: SecretStorage,
  keys: SecretStorageKey | readonly SecretStorageKey[],
): Promise<CrossSigningKeyRole[]> {
  const exported = await machine.exportCrossSigningKeys();
  if (exported === undefined) {
    throw new SecretStorageError("no_cross_signing_keys", "The machine has no private cross-signing keys");
  }
  // crypto-wasm 18 spells the self-signing getter in snake_case, unlike the other two.
  const seeds: Record<CrossSigningKeyRole, string | undefined> = {
    master: exported.masterKey,
    selfSigning: exported.self_signing_key,
    userSigning: exported.userSigningKey,
  };
  exported.free();
  const stored: CrossSigningKeyRole[] = [];
  for (const role of ROLES) {
    const seed = seeds[role];
    if (seed === undefined) continue;
    await storage.store(CROSS_SIGNING_SECRET_NAMES[role], seed, keys);
    stored.push(role);
  }
  if (stored.length === 0) {
    throw new SecretStorageError("no_cross_signing_keys", "The machine has no private cross-signing keys");
  }
  return stored;
}

/**
 * Reads the cross-signing secrets with `key` and imports them into `machine`. A secret that is not
 * stored at all is skipped (`found` says which were); one stored under another key, or failing its
 * MAC, is an error, so a wrong key never looks like an empty store.
 */
export async function restoreCrossSigningKeys(
  machine: ImportingMachine,
  storage: SecretStorage,
  key: SecretStorageKey,
): Promise<CrossSigningRestoreResult> {
  const seeds: Partial<Record<CrossSigningKeyRole, string>> = {};
  const found: CrossSigningKeyRole[] = [];
  for (const role of ROLES) {
    const seed = await storage.get(CROSS_SIGNING_SECRET_NAMES[role], key);
    if (seed === undefined) continue;
    seeds[role] = seed;
    found.push(role);
  }
  if (found.length === 0) {
    return { found, status: { hasMaster: false, hasSelfSigning: false, hasUserSigning: false } };
  }
  for (const role of found) {
    // Each seed is the unpadded base64 of a 32-byte Ed25519 seed; its MAC held, so a bad one was
    // written that way by a client holding the key.
    if (decodeBase64(seeds[role]!)?.length !== 32) {
      throw new SecretStorageError(
        "malformed",
        `The stored ${CROSS_SIGNING_SECRET_NAMES[role]} is not a 32-byte seed`,
        {
          details: { secretName: CROSS_SIGNING_SECRET_NAMES[role] },
        },
      );
    }
  }
  let status: Awaited<ReturnType<ImportingMachine["importCrossSigningKeys"]>>;
  try {
    status = await machine.importCrossSigningKeys(seeds.master, seeds.selfSigning, seeds.userSigning);
  } catch (cause) {
    // crypto-wasm refuses a seed whose public key differs from the identity it knows.
    throw new SecretStorageError(
      "cross_signing_mismatch",
      "The stored cross-signing keys do not match the account's current cross-signing identity",
      { cause, details: { found } },
    );
  }
  return { found, status: readCrossSigningStatus(status) };
}
