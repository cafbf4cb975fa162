import { beforeAll, describe, expect, it } from "vitest";
import { loadCryptoWasm } from "../src/crypto/load-wasm.js";
import { createMockHomeserver } from "../src/testing/index.js";
import { useInProcessClients } from "./support/in-process-clients.js";

/**
 * `bootstrap({ createSecretStorageKey })` run again (an app that bootstraps on every launch) must
 * not make a new default key behind the user's back: the recovery key they wrote down would stop
 * opening anything.
 */

beforeAll(() => loadCryptoWasm());

const PASSWORD = "pw-for-bootstrap-guard";
const { newUser } = useInProcessClients(PASSWORD);

describe("bootstrapping with a new secret-storage key", () => {
  it("refuses when the account already has a default key, and changes nothing", async () => {
    const hs = createMockHomeserver();
    const { account, client } = await newUser(hs, "alice");
    const first = await client.crossSigning.bootstrap({ createSecretStorageKey: true });
    const defaultBefore = await client.secretStorage.getDefaultKeyId();
    const accountDataBefore = JSON.stringify([...hs.state.accountData.all(account.userId)]);

    const error = await client.crossSigning
      .bootstrap({ createSecretStorageKey: true })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "secret_storage_key_exists",
      details: { keyId: first.secretStorageKey.keyId },
    });
    expect(await client.secretStorage.getDefaultKeyId()).toBe(defaultBefore);
    expect(JSON.stringify([...hs.state.accountData.all(account.userId)])).toBe(accountDataBefore);
    // The recovery key the user holds still opens secret storage.
    await expect(client.secretStorage.unlockWithRecoveryKey(first.recoveryKey)).resolves.toMatchObject({
      keyId: first.secretStorageKey.keyId,
    });
  });

  it("replaces the key when the app asks for it", async () => {
    const hs = createMockHomeserver();
    const { client } = await newUser(hs, "bob");
    const first = await client.crossSigning.bootstrap({ createSecretStorageKey: true });
    const second = await client.crossSigning.bootstrap({
      createSecretStorageKey: true,
      replaceSecretStorageKey: true,
    });
    expect(second.secretStorageKey.keyId).not.toBe(first.secretStorageKey.keyId);
    expect(await client.secretStorage.getDefaultKeyId()).toBe(second.secretStorageKey.keyId);
    await expect(client.secretStorage.unlockWithRecoveryKey(second.recoveryKey)).resolves.toBeDefined();
  });
});
