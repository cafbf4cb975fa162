import {
  deriveRecoveryKeyFromPassphrase,
  encodeRecoveryKey as jsSdkEncodeRecoveryKey,
} from "matrix-js-sdk/lib/crypto-api/index.js";
import {
  type AccountDataClient,
  SECRET_STORAGE_ALGORITHM_V1_AES,
  type SecretStorageKeyDescription,
  ServerSideSecretStorageImpl,
} from "matrix-js-sdk/lib/secret-storage.js";
import { describe, expect, it } from "vitest";
import { deriveKeyFromPassphrase } from "../../src/secret-storage/passphrase.js";
import { SecretStorage } from "../../src/secret-storage/secret-storage.js";
import { InMemoryAccountData } from "./in-memory-account-data.js";

/**
 * Our SecretStorage and matrix-js-sdk 43's ServerSideSecretStorageImpl over the same account data:
 * what Element writes we must read, and the reverse.
 */
function bothSides(keyFor: () => [string, Uint8Array] | undefined) {
  const accountData = new InMemoryAccountData();
  const ours = new SecretStorage(accountData);
  const theirs = new ServerSideSecretStorageImpl(accountData as unknown as AccountDataClient, {
    getSecretStorageKey: async ({ keys }) => {
      const held = keyFor();
      if (held === undefined || keys[held[0]] === undefined) return null;
      return [held[0], Uint8Array.from(held[1])];
    },
  });
  return { accountData, ours, theirs };
}

describe("interop with matrix-js-sdk secret storage", () => {
  it("matrix-js-sdk reads a key and a secret that we wrote", async () => {
    let held: [string, Uint8Array] | undefined;
    const { ours, theirs } = bothSides(() => held);
    const created = await ours.createKey({ name: "ours" });
    held = [created.keyId, created.key];
    await ours.store("m.cross_signing.master", "seedseedseed", created);

    expect(await theirs.getDefaultKeyId()).toBe(created.keyId);
    const [keyId, info] = (await theirs.getKey())!;
    expect(keyId).toBe(created.keyId);
    expect(await theirs.checkKey(Uint8Array.from(created.key), info)).toBe(true);
    expect(await theirs.checkKey(new Uint8Array(32), info)).toBe(false);
    expect(await theirs.isStored("m.cross_signing.master")).toEqual({ [created.keyId]: info });
    expect(await theirs.get("m.cross_signing.master")).toBe("seedseedseed");
    expect(jsSdkEncodeRecoveryKey(created.key)).toBe(created.recoveryKey);
  });

  it("we read a key and a secret that matrix-js-sdk wrote", async () => {
    const key = globalThis.crypto.getRandomValues(new Uint8Array(32));
    let held: [string, Uint8Array] | undefined;
    const { ours, theirs } = bothSides(() => held);
    const { keyId } = await theirs.addKey(SECRET_STORAGE_ALGORITHM_V1_AES, { key, name: "theirs" });
    await theirs.setDefaultKeyId(keyId);
    held = [keyId, key];
    await theirs.store("m.cross_signing.self_signing", "their seed ✓");

    expect(await ours.getDefaultKeyId()).toBe(keyId);
    expect(await ours.getKeyDescription(keyId)).toMatchObject({ keyId, name: "theirs" });
    expect(await ours.checkKey(key)).toBe(true);
    expect(await ours.checkKey(new Uint8Array(32))).toBe(false);
    const unlocked = await ours.unlockWithRecoveryKey(jsSdkEncodeRecoveryKey(key)!);
    expect(await ours.isStored("m.cross_signing.self_signing")).toBe(true);
    expect(await ours.get("m.cross_signing.self_signing", unlocked)).toBe("their seed ✓");
  });

  it("we unlock a passphrase key that matrix-js-sdk created, deriving the same bytes", async () => {
    const passphraseInfo = { algorithm: "m.pbkdf2" as const, salt: "NaClNaClNaCl", iterations: 2000 };
    const key = await deriveRecoveryKeyFromPassphrase(
      "hunter2 hunter2",
      passphraseInfo.salt,
      passphraseInfo.iterations,
    );
    expect(await deriveKeyFromPassphrase("hunter2 hunter2", passphraseInfo)).toEqual(key);

    let held: [string, Uint8Array] | undefined;
    const { ours, theirs } = bothSides(() => held);
    const { keyId } = await theirs.addKey(SECRET_STORAGE_ALGORITHM_V1_AES, {
      key,
      passphrase: passphraseInfo,
    });
    await theirs.setDefaultKeyId(keyId);
    held = [keyId, key];
    await theirs.store("org.matrix.msc3814", "dehydration-key-b64");
    const unlocked = await ours.unlockWithPassphrase("hunter2 hunter2");
    expect(await ours.get("org.matrix.msc3814", unlocked)).toBe("dehydration-key-b64");
  });

  it("matrix-js-sdk reads a secret we stored under a key it created, next to its own secrets", async () => {
    const key = globalThis.crypto.getRandomValues(new Uint8Array(32));
    let held: [string, Uint8Array] | undefined;
    const { ours, theirs } = bothSides(() => held);
    const { keyId, keyInfo } = await theirs.addKey(SECRET_STORAGE_ALGORITHM_V1_AES, { key });
    held = [keyId, key];
    const unlocked = await ours.unlock(key, keyId);
    await ours.store("org.matrix.msc3814", Uint8Array.of(1, 2, 3, 4), unlocked);
    expect(await theirs.get("org.matrix.msc3814")).toBe("AQIDBA");
    expect(await theirs.checkKey(key, keyInfo as SecretStorageKeyDescription)).toBe(true);
  });

  it("matrix-js-sdk rejects our secret under a wrong key, as we reject theirs", async () => {
    const right = globalThis.crypto.getRandomValues(new Uint8Array(32));
    let held: [string, Uint8Array] | undefined;
    const { ours, theirs } = bothSides(() => held);
    const { keyId } = await theirs.addKey(SECRET_STORAGE_ALGORITHM_V1_AES, { key: right });
    await ours.store("m.megolm_backup.v1", "value", await ours.unlock(right, keyId));
    held = [keyId, new Uint8Array(32)];
    await expect(theirs.get("m.megolm_backup.v1")).rejects.toThrow(/bad MAC/);
    await expect(ours.get("m.megolm_backup.v1", { keyId, key: new Uint8Array(32) })).rejects.toMatchObject({
      code: "bad_mac",
    });
  });
});
