import { describe, expect, it } from "vitest";
import { encryptAesHmacSha2 } from "../../src/secret-storage/aes-hmac-sha2.js";
import { decodeBase64 } from "../../src/secret-storage/base64.js";
import { isSecretStorageError, type SecretStorageError } from "../../src/secret-storage/errors.js";
import { decodeRecoveryKey } from "../../src/secret-storage/recovery-key.js";
import { SecretStorage } from "../../src/secret-storage/secret-storage.js";
import { InMemoryAccountData } from "./in-memory-account-data.js";

async function failure(promise: Promise<unknown>): Promise<SecretStorageError> {
  try {
    await promise;
  } catch (e) {
    if (isSecretStorageError(e)) return e;
    throw e;
  }
  throw new Error("expected a SecretStorageError, got success");
}

async function setup() {
  const accountData = new InMemoryAccountData();
  const storage = new SecretStorage(accountData);
  const created = await storage.createKey({ name: "test key" });
  return { accountData, storage, created };
}

describe("SecretStorage keys", () => {
  it("creates a random key with a description, a key check and the default-key pointer", async () => {
    const { accountData, storage, created } = await setup();
    expect(created.keyId).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(created.key.length).toBe(32);
    expect(decodeRecoveryKey(created.recoveryKey)).toEqual(created.key);
    const wire = await accountData.get(`m.secret_storage.key.${created.keyId}`);
    expect(wire).toEqual({
      algorithm: "m.secret_storage.v1.aes-hmac-sha2",
      iv: created.description.keyCheck!.iv,
      mac: created.description.keyCheck!.mac,
      name: "test key",
    });
    expect(await accountData.get("m.secret_storage.default_key")).toEqual({ key: created.keyId });
    expect(await storage.getDefaultKeyId()).toBe(created.keyId);
    expect(await storage.getKeyDescription(created.keyId)).toEqual(created.description);
  });

  it("leaves the default key alone when asked to", async () => {
    const { storage, created } = await setup();
    const second = await storage.createKey({ setAsDefault: false });
    expect(second.keyId).not.toBe(created.keyId);
    expect(await storage.getDefaultKeyId()).toBe(created.keyId);
  });

  it("checks and unlocks with the right key, and refuses a wrong one with bad_key", async () => {
    const { storage, created } = await setup();
    expect(await storage.checkKey(created.key)).toBe(true);
    expect(await storage.checkKey(new Uint8Array(32))).toBe(false);
    expect(await storage.unlockWithRecoveryKey(created.recoveryKey)).toEqual({
      keyId: created.keyId,
      key: created.key,
    });
    const error = await failure(storage.unlock(new Uint8Array(32).fill(1)));
    expect(error.code).toBe("bad_key");
    expect(error.details).toEqual({ keyId: created.keyId });
  });

  it("reports no default key, unknown keys and unsupported algorithms with typed errors", async () => {
    const accountData = new InMemoryAccountData();
    const storage = new SecretStorage(accountData);
    expect(await storage.getDefaultKeyId()).toBeUndefined();
    expect((await failure(storage.checkKey(new Uint8Array(32)))).code).toBe("no_default_key");
    accountData.plant("m.secret_storage.default_key", {});
    expect((await failure(storage.unlock(new Uint8Array(32)))).code).toBe("no_default_key");
    expect((await failure(storage.unlock(new Uint8Array(32), "nope"))).code).toBe("unknown_key");
    accountData.plant("m.secret_storage.key.old", { algorithm: "m.secret_storage.v1.curve25519-aes-sha2" });
    expect((await failure(storage.unlock(new Uint8Array(32), "old"))).code).toBe("unsupported_algorithm");
  });

  it("accepts any key for a description without a key check, but get still rejects it by MAC", async () => {
    const { accountData, storage, created } = await setup();
    await storage.store("org.example.secret", "s3cret", created);
    accountData.plant(`m.secret_storage.key.${created.keyId}`, {
      algorithm: "m.secret_storage.v1.aes-hmac-sha2",
    });
    const wrong = await storage.unlock(new Uint8Array(32).fill(9), created.keyId);
    expect((await failure(storage.get("org.example.secret", wrong))).code).toBe("bad_mac");
  });

  it("derives a passphrase key with m.pbkdf2 and refuses a wrong passphrase", async () => {
    const storage = new SecretStorage(new InMemoryAccountData());
    const created = await storage.createKey({ passphrase: "correct horse", passphraseIterations: 1000 });
    expect(created.description.passphrase).toMatchObject({ algorithm: "m.pbkdf2", iterations: 1000 });
    expect(created.description.passphrase!.salt).toMatch(/^[A-Za-z0-9]{32}$/);
    const unlocked = await storage.unlockWithPassphrase("correct horse");
    expect(unlocked.key).toEqual(created.key);
    expect((await failure(storage.unlockWithPassphrase("wrong horse"))).code).toBe("bad_key");

    const plain = await storage.createKey();
    expect((await failure(storage.unlockWithPassphrase("correct horse", plain.keyId))).code).toBe(
      "no_passphrase",
    );
  });
});

describe("SecretStorage secrets", () => {
  it("stores and reads back a text secret, encrypted under the key id", async () => {
    const { accountData, storage, created } = await setup();
    await storage.store("org.example.secret", "top secret ✓", created);
    const wire = (await accountData.get("org.example.secret")) as { encrypted: Record<string, unknown> };
    expect(Object.keys(wire.encrypted)).toEqual([created.keyId]);
    expect(JSON.stringify(wire)).not.toContain("top secret");
    expect(await storage.get("org.example.secret", created)).toBe("top secret ✓");
    expect(await storage.isStored("org.example.secret")).toBe(true);
    expect(await storage.isStored("org.example.secret", "other")).toBe(false);
  });

  it("stores bytes as their unpadded base64 text", async () => {
    const { storage, created } = await setup();
    const raw = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);
    await storage.store("org.matrix.msc3814", raw, created);
    const text = await storage.get("org.matrix.msc3814", created);
    expect(text).toMatch(/^[A-Za-z0-9+/]{43}$/);
    expect(decodeBase64(text!)).toEqual(raw);
  });

  it("encrypts under several keys, each of which reads it", async () => {
    const { storage, created } = await setup();
    const second = await storage.createKey({ setAsDefault: false });
    await storage.store("org.example.secret", "shared", [created, second]);
    expect(await storage.get("org.example.secret", created)).toBe("shared");
    expect(await storage.get("org.example.secret", second)).toBe("shared");
  });

  it("replaces older encryptions when a secret is stored again", async () => {
    const { storage, created } = await setup();
    const second = await storage.createKey({ setAsDefault: false });
    await storage.store("org.example.secret", "v1", [created, second]);
    await storage.store("org.example.secret", "v2", second);
    expect(await storage.get("org.example.secret", second)).toBe("v2");
    expect((await failure(storage.get("org.example.secret", created))).code).toBe("not_stored");
  });

  it("returns undefined for a secret never stored or removed", async () => {
    const { storage, created } = await setup();
    expect(await storage.get("org.example.none", created)).toBeUndefined();
    expect(await storage.isStored("org.example.none")).toBe(false);
    await storage.store("org.example.secret", "x", created);
    await storage.remove("org.example.secret");
    expect(await storage.get("org.example.secret", created)).toBeUndefined();
    expect(await storage.isStored("org.example.secret")).toBe(false);
  });

  it("refuses to store under a key that fails its key check, and writes nothing", async () => {
    const { accountData, storage, created } = await setup();
    const error = await failure(
      storage.store("org.example.secret", "x", { keyId: created.keyId, key: new Uint8Array(32) }),
    );
    expect(error.code).toBe("bad_key");
    expect(accountData.entries.has("org.example.secret")).toBe(false);
    expect(
      (await failure(storage.store("org.example.secret", "x", { keyId: "ghost", key: created.key }))).code,
    ).toBe("unknown_key");
  });

  it("detects a ciphertext changed on the server with bad_mac", async () => {
    const { accountData, storage, created } = await setup();
    await storage.store("org.example.secret", "original", created);
    const forged = await encryptAesHmacSha2(new Uint8Array(32).fill(7), "org.example.secret", "forged");
    accountData.plant("org.example.secret", { encrypted: { [created.keyId]: forged } });
    expect((await failure(storage.get("org.example.secret", created))).code).toBe("bad_mac");
  });

  it("rejects a secret that decrypts to invalid UTF-8 as malformed", async () => {
    const { accountData, storage, created } = await setup();
    const payload = await encryptAesHmacSha2(created.key, "org.example.bin", Uint8Array.of(0xff, 0xfe));
    accountData.plant("org.example.bin", { encrypted: { [created.keyId]: payload } });
    expect((await failure(storage.get("org.example.bin", created))).code).toBe("malformed");
  });
});

describe("SecretStorage with malformed account data", () => {
  const hostile = "AAAA-this-value-must-not-be-echoed-AAAA";

  const cases: Array<{
    label: string;
    plant: (a: InMemoryAccountData, keyId: string) => void;
    run: (s: SecretStorage, key: { keyId: string; key: Uint8Array }) => Promise<unknown>;
  }> = [
    {
      label: "a default key that is not a string",
      plant: (a) => a.plant("m.secret_storage.default_key", { key: 42 }),
      run: (s) => s.getDefaultKeyId(),
    },
    {
      label: "an empty default key id",
      plant: (a) => a.plant("m.secret_storage.default_key", { key: "" }),
      run: (s) => s.getDefaultKeyId(),
    },
    {
      label: "a key description without an algorithm",
      plant: (a, id) => a.plant(`m.secret_storage.key.${id}`, { iv: hostile, mac: hostile }),
      run: (s, k) => s.unlock(k.key, k.keyId),
    },
    {
      label: "a key description with an iv but no mac",
      plant: (a, id) =>
        a.plant(`m.secret_storage.key.${id}`, {
          algorithm: "m.secret_storage.v1.aes-hmac-sha2",
          iv: hostile,
        }),
      run: (s, k) => s.checkKey(k.key, k.keyId),
    },
    {
      label: "a key check that is not base64",
      plant: (a, id) =>
        a.plant(`m.secret_storage.key.${id}`, {
          algorithm: "m.secret_storage.v1.aes-hmac-sha2",
          iv: hostile,
          mac: hostile,
        }),
      run: (s, k) => s.checkKey(k.key, k.keyId),
    },
    {
      label: "passphrase parameters with an absurd iteration count",
      plant: (a, id) =>
        a.plant(`m.secret_storage.key.${id}`, {
          algorithm: "m.secret_storage.v1.aes-hmac-sha2",
          passphrase: { algorithm: "m.pbkdf2", salt: hostile, iterations: 1e12 },
        }),
      run: (s, k) => s.unlockWithPassphrase("pw", k.keyId),
    },
    {
      label: "a secret whose encrypted field is not an object",
      plant: (a) => a.plant("org.example.secret", { encrypted: hostile }),
      run: (s, k) => s.get("org.example.secret", k),
    },
    {
      label: "a secret without an encrypted field",
      plant: (a) => a.plant("org.example.secret", { ciphertext: hostile }),
      run: (s, k) => s.get("org.example.secret", k),
    },
    {
      label: "an encryption without a mac",
      plant: (a, id) =>
        a.plant("org.example.secret", { encrypted: { [id]: { iv: hostile, ciphertext: hostile } } }),
      run: (s, k) => s.get("org.example.secret", k),
    },
    {
      label: "an encryption with an iv of the wrong length",
      plant: (a, id) =>
        a.plant("org.example.secret", {
          encrypted: { [id]: { iv: "AAAA", ciphertext: "AAAA", mac: "A".repeat(43) } },
        }),
      run: (s, k) => s.get("org.example.secret", k),
    },
    {
      label: "an encryption of the wrong shape, when asking whether it is stored",
      plant: (a, id) => a.plant("org.example.secret", { encrypted: { [id]: [hostile] } }),
      run: (s) => s.isStored("org.example.secret"),
    },
  ];

  for (const c of cases) {
    it(`rejects ${c.label} as malformed without echoing it`, async () => {
      const { accountData, storage, created } = await setup();
      c.plant(accountData, created.keyId);
      const error = await failure(c.run(storage, created));
      expect(error.code).toBe("malformed");
      expect(error.message).not.toContain(hostile);
      expect(JSON.stringify(error.details)).not.toContain(hostile);
    });
  }
});
