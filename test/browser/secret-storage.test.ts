import { describe, expect, it } from "vitest";
import { SecretStorage } from "../../src/secret-storage/secret-storage.js";
import { InMemoryAccountData } from "../secret-storage/in-memory-account-data.js";
import type { SecretStorageScenarios } from "./pages/secret-storage.js";
import { useBrowserSuite } from "./support/browser-suite.js";

const browser = useBrowserSuite();

const SECRET_NAME = "m.cross_signing.master";
const SECRET = "a secret that must survive the round trip";
const PASSPHRASE = "browser test passphrase";
// Low, so the test is quick; the count is read from the key description either way.
const ITERATIONS = 10_000;

describe("secret storage on Chromium's WebCrypto", () => {
  it("creates a key, stores a secret and reads it back with the key and with the recovery key", async () => {
    const page = await browser.openPage<SecretStorageScenarios>("secret-storage");
    expect(await page.call("webCryptoIsNative")).toBe(true);

    const { keyId, defaultKeyId, recoveryKeyGroupLengths } = await page.call("createKey");
    expect(defaultKeyId).toBe(keyId);
    // 35 bytes starting 0x8B are always 48 base58 characters: twelve groups of four.
    expect(recoveryKeyGroupLengths).toEqual(Array(12).fill(4));

    expect(await page.call("isStored", SECRET_NAME)).toBe(false);
    await page.call("store", SECRET_NAME, SECRET, keyId);
    expect(await page.call("isStored", SECRET_NAME)).toBe(true);
    expect(await page.call("read", SECRET_NAME, keyId)).toBe(SECRET);
    expect(await page.call("readWithRecoveryKey", SECRET_NAME, keyId)).toBe(SECRET);

    const stored = (await page.call("dumpAccountData"))[SECRET_NAME] as {
      encrypted: Record<string, { iv: string; ciphertext: string; mac: string }>;
    };
    expect(Object.keys(stored.encrypted)).toEqual([keyId]);
    expect(JSON.stringify(stored)).not.toContain(SECRET);
    await page.close();
  });

  it("refuses a wrong recovery key, a truncated one and a tampered secret with typed errors", async () => {
    const page = await browser.openPage<SecretStorageScenarios>("secret-storage");
    const { keyId } = await page.call("createKey");
    await page.call("store", SECRET_NAME, SECRET, keyId);

    expect(await page.callExpectingError("unlockWithAnotherValidRecoveryKey", keyId)).toMatchObject({
      name: "SecretStorageError",
      code: "bad_key",
    });
    expect(await page.callExpectingError("unlockWithTruncatedRecoveryKey", keyId)).toMatchObject({
      name: "SecretStorageError",
      code: "recovery_key_bad_length",
    });

    // A key that is not the secret's: the secret exists but is not encrypted for it.
    const other = await page.call("createKey", { setAsDefault: false });
    expect(await page.callExpectingError("read", SECRET_NAME, other.keyId)).toMatchObject({
      code: "not_stored",
    });

    await page.call("tamper", SECRET_NAME, keyId);
    expect(await page.callExpectingError("read", SECRET_NAME, keyId)).toMatchObject({ code: "bad_mac" });
    await page.close();
  });

  it("writes secrets that Node reads, and reads secrets that Node writes", async () => {
    const page = await browser.openPage<SecretStorageScenarios>("secret-storage");

    // Chromium writes, Node reads: same PBKDF2, HKDF, AES-CTR and HMAC results on both WebCryptos.
    const { keyId: browserKeyId } = await page.call("createKey", {
      passphrase: PASSPHRASE,
      iterations: ITERATIONS,
    });
    await page.call("store", SECRET_NAME, SECRET, browserKeyId);
    const fromBrowser = new InMemoryAccountData();
    for (const [type, content] of Object.entries(await page.call("dumpAccountData"))) {
      fromBrowser.plant(type, content);
    }
    const nodeReader = new SecretStorage(fromBrowser);
    const nodeKey = await nodeReader.unlockWithPassphrase(PASSPHRASE);
    expect(nodeKey.keyId).toBe(browserKeyId);
    expect(await nodeReader.get(SECRET_NAME, nodeKey)).toBe(SECRET);

    // Node writes, Chromium reads.
    const fromNode = new InMemoryAccountData();
    const nodeWriter = new SecretStorage(fromNode);
    const created = await nodeWriter.createKey({ passphrase: PASSPHRASE, passphraseIterations: ITERATIONS });
    await nodeWriter.store("m.cross_signing.self_signing", "written in node", created);
    await page.call(
      "loadAccountData",
      Object.fromEntries([...fromNode.entries].map(([type, text]) => [type, JSON.parse(text)])),
    );
    expect(await page.call("readWithPassphrase", "m.cross_signing.self_signing", PASSPHRASE)).toBe(
      "written in node",
    );
    expect(
      await page.callExpectingError("readWithPassphrase", "m.cross_signing.self_signing", "wrong"),
    ).toMatchObject({ code: "bad_key" });
    await page.close();
  });
});
