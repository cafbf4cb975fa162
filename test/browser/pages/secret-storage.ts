import { decodeRecoveryKey, encodeRecoveryKey } from "../../../src/secret-storage/recovery-key.js";
import {
  type AccountDataAccess,
  SecretStorage,
  type SecretStorageKey,
} from "../../../src/secret-storage/secret-storage.js";
import { exposeScenarios } from "./scenario-protocol.js";

/** Account data kept as JSON text, as a server keeps it: nothing is shared by reference. */
class MapAccountData implements AccountDataAccess {
  readonly entries = new Map<string, string>();

  async get(type: string): Promise<Record<string, unknown> | undefined> {
    const text = this.entries.get(type);
    return text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>);
  }

  async set(type: string, content: Record<string, unknown>): Promise<void> {
    this.entries.set(type, JSON.stringify(content));
  }
}

let accountData = new MapAccountData();
let storage = new SecretStorage(accountData);
/**
 * Keys and recovery keys stay in the page: the Node side sees key ids and outcomes only, so no key
 * material can end up in a failed assertion's output.
 */
const heldKeys = new Map<string, { key: SecretStorageKey; recoveryKey: string }>();

function held(keyId: string): { key: SecretStorageKey; recoveryKey: string } {
  const entry = heldKeys.get(keyId);
  if (entry === undefined) throw new Error(`the page holds no key "${keyId}"`);
  return entry;
}

const scenarios = {
  /** Creates a key (random, or from a passphrase); returns its id and the recovery key's layout. */
  async createKey(options: { passphrase?: string; iterations?: number; setAsDefault?: boolean } = {}) {
    const created = await storage.createKey({
      ...(options.passphrase !== undefined ? { passphrase: options.passphrase } : {}),
      ...(options.iterations !== undefined ? { passphraseIterations: options.iterations } : {}),
      ...(options.setAsDefault !== undefined ? { setAsDefault: options.setAsDefault } : {}),
    });
    heldKeys.set(created.keyId, {
      key: { keyId: created.keyId, key: created.key },
      recoveryKey: created.recoveryKey,
    });
    return {
      keyId: created.keyId,
      defaultKeyId: await storage.getDefaultKeyId(),
      recoveryKeyGroupLengths: created.recoveryKey.split(" ").map((group) => group.length),
    };
  },

  async store(name: string, secret: string, keyId: string) {
    await storage.store(name, secret, held(keyId).key);
  },

  async read(name: string, keyId: string) {
    return storage.get(name, held(keyId).key);
  },

  async isStored(name: string, keyId?: string) {
    return storage.isStored(name, keyId);
  },

  /** Decodes the held recovery key as a user would type it back, unlocks with it, reads `name`. */
  async readWithRecoveryKey(name: string, keyId: string) {
    const { recoveryKey } = held(keyId);
    // Users paste with odd spacing; decoding ignores whitespace.
    const retyped = ` ${recoveryKey.replaceAll(" ", "  ")}\n`;
    const unlocked = await storage.unlockWithRecoveryKey(retyped, keyId);
    return storage.get(name, unlocked);
  },

  /** A well-formed recovery key for other key bytes (one bit flipped): must be refused. */
  async unlockWithAnotherValidRecoveryKey(keyId: string) {
    const bytes = decodeRecoveryKey(held(keyId).recoveryKey);
    bytes[0] = (bytes[0] ?? 0) ^ 0x01;
    await storage.unlockWithRecoveryKey(encodeRecoveryKey(bytes), keyId);
  },

  /** The recovery key with its last group missing, as if cut short when copied. */
  async unlockWithTruncatedRecoveryKey(keyId: string) {
    const groups = held(keyId).recoveryKey.split(" ");
    await storage.unlockWithRecoveryKey(groups.slice(0, -1).join(" "), keyId);
  },

  async readWithPassphrase(name: string, passphrase: string) {
    const unlocked = await storage.unlockWithPassphrase(passphrase);
    return storage.get(name, unlocked);
  },

  /** Flips one bit of the stored ciphertext for `keyId`, as a hostile server could. */
  async tamper(name: string, keyId: string) {
    const content = (await accountData.get(name)) as { encrypted: Record<string, { ciphertext: string }> };
    const entry = content.encrypted[keyId];
    if (entry === undefined) throw new Error(`"${name}" has no encryption for "${keyId}"`);
    const bytes = Uint8Array.from(atob(entry.ciphertext), (c) => c.charCodeAt(0));
    bytes[0] = (bytes[0] ?? 0) ^ 0x01;
    entry.ciphertext = btoa(String.fromCharCode(...bytes));
    await accountData.set(name, content);
  },

  /** Everything in account data: ciphertexts and key descriptions, never key material. */
  async dumpAccountData() {
    return Object.fromEntries([...accountData.entries].map(([type, text]) => [type, JSON.parse(text)]));
  },

  /** Replaces account data with `dump` (from another client), forgetting held keys. */
  async loadAccountData(dump: Record<string, Record<string, unknown>>) {
    accountData = new MapAccountData();
    for (const [type, content] of Object.entries(dump)) await accountData.set(type, content);
    storage = new SecretStorage(accountData);
    heldKeys.clear();
  },

  /** Which WebCrypto this page uses: the browser's own, not a polyfill. */
  async webCryptoIsNative() {
    return (
      window.isSecureContext &&
      typeof crypto.subtle?.importKey === "function" &&
      Function.prototype.toString.call(crypto.subtle.importKey).includes("[native code]")
    );
  },
};

export type SecretStorageScenarios = typeof scenarios;
exposeScenarios(scenarios);
