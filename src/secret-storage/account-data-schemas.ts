import { z } from "zod";
import type { AesHmacSha2Payload, KeyCheck } from "./aes-hmac-sha2.js";
import { AES_HMAC_SHA2_ALGORITHM } from "./aes-hmac-sha2.js";
import { SecretStorageError } from "./errors.js";
import { type PassphraseInfo, PBKDF2_ALGORITHM } from "./passphrase.js";

/**
 * Account data is written by any client of the account and relayed by the server: untrusted. These
 * schemas turn the snake_case wire content (Client-Server spec, "Secrets" > "Key storage" and
 * "Secret storage") into checked camelCase values, or a `malformed` error that does not echo it.
 */

export const DEFAULT_KEY_EVENT_TYPE = "m.secret_storage.default_key";
export const keyEventType = (keyId: string): string => `m.secret_storage.key.${keyId}`;

/**
 * Iteration counts above this are refused: the count comes from account data, and an absurd one
 * would freeze the client in PBKDF2. Element uses 500,000.
 */
export const MAX_PASSPHRASE_ITERATIONS = 10_000_000;

/** A checked `m.secret_storage.key.<id>` description, camelCase. */
export interface SecretStorageKeyDescription {
  keyId: string;
  algorithm: string;
  /** Human-readable name, if the creating client gave one. */
  name?: string;
  /** The spec's key check (`iv`, `mac`); clients "should" store it, very old keys may lack it. */
  keyCheck?: KeyCheck;
  /** Present when the key can be derived from a passphrase with `m.pbkdf2`. */
  passphrase?: PassphraseInfo;
}

const defaultKeySchema = z.object({ key: z.string().min(1).optional() });

const pbkdf2Schema = z.object({
  algorithm: z.literal(PBKDF2_ALGORITHM),
  salt: z.string(),
  iterations: z.number().int().min(1).max(MAX_PASSPHRASE_ITERATIONS),
  bits: z.number().int().min(128).max(512).multipleOf(8).optional(),
});

const keyDescriptionSchema = z
  .object({
    algorithm: z.string(),
    name: z.string().optional(),
    iv: z.string().optional(),
    mac: z.string().optional(),
    passphrase: z.looseObject({ algorithm: z.string() }).optional(),
  })
  .refine((d) => (d.iv === undefined) === (d.mac === undefined), { message: "iv and mac go together" });

const payloadSchema = z.object({ iv: z.string(), ciphertext: z.string(), mac: z.string() });

const secretContentSchema = z.object({ encrypted: z.record(z.string(), z.unknown()) });

function malformed(what: string, issues: z.core.$ZodIssue[]): SecretStorageError {
  // Only paths and issue codes go into details: never the values, which may be key material.
  return new SecretStorageError("malformed", `Account data ${what} is malformed`, {
    details: { issues: issues.map((i) => ({ path: i.path.map(String).join("."), code: i.code })) },
  });
}

/**
 * `undefined` when there is no default key: absent, or without `key` (matrix-js-sdk unsets it by
 * writing `{}`). A `key` that is not a non-empty string is malformed.
 */
export function parseDefaultKey(content: Record<string, unknown> | undefined): string | undefined {
  if (content === undefined) return undefined;
  const result = defaultKeySchema.safeParse(content);
  if (!result.success) throw malformed(`"${DEFAULT_KEY_EVENT_TYPE}"`, result.error.issues);
  return result.data.key;
}

export function parseKeyDescription(
  keyId: string,
  content: Record<string, unknown>,
): SecretStorageKeyDescription {
  const result = keyDescriptionSchema.safeParse(content);
  if (!result.success) throw malformed(`"${keyEventType(keyId)}"`, result.error.issues);
  const d = result.data;
  const description: SecretStorageKeyDescription = { keyId, algorithm: d.algorithm };
  if (d.name !== undefined) description.name = d.name;
  if (d.iv !== undefined && d.mac !== undefined) description.keyCheck = { iv: d.iv, mac: d.mac };
  // Only m.pbkdf2 is specified; another algorithm simply means "no usable passphrase".
  if (d.passphrase?.algorithm === PBKDF2_ALGORITHM) {
    const p = pbkdf2Schema.safeParse(d.passphrase);
    if (!p.success) throw malformed(`"${keyEventType(keyId)}" passphrase`, p.error.issues);
    description.passphrase = p.data;
  }
  return description;
}

export function isAesHmacSha2(description: SecretStorageKeyDescription): boolean {
  return description.algorithm === AES_HMAC_SHA2_ALGORITHM;
}

/**
 * The per-key encryptions of a secret, still unchecked per entry (an entry for a key of another
 * algorithm may have any shape). `undefined` when the secret is absent or was deleted (`{}`).
 */
export function parseSecretContent(
  name: string,
  content: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  if (content === undefined || Object.keys(content).length === 0) return undefined;
  const result = secretContentSchema.safeParse(content);
  if (!result.success) throw malformed(`"${name}"`, result.error.issues);
  return result.data.encrypted;
}

export function parseAesPayload(name: string, keyId: string, entry: unknown): AesHmacSha2Payload {
  const result = payloadSchema.safeParse(entry);
  if (!result.success) throw malformed(`"${name}" (encryption for key "${keyId}")`, result.error.issues);
  return result.data;
}
