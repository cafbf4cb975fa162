import { describe, expect, it } from "vitest";
import { inClient } from "./support/client-mode.js";
import {
  createAccount,
  loginNewDevice,
  refreshDeviceLists,
  useFoundationSetup,
} from "./support/foundation-fixtures.js";

/**
 * A user who chose a passphrase instead of writing down a recovery key: the secret-storage key is
 * derived from it (`m.pbkdf2`), and a new login restores cross-signing from the passphrase alone,
 * through the facade over the mock homeserver's real socket. Each test sets up the accounts it
 * needs on its own server; after each, the setup checks that neither passphrase, no recovery key
 * and no access token reached a log line, an error or an event.
 */

const ALL_KEYS = { hasMaster: true, hasSelfSigning: true, hasUserSigning: true };
const NO_KEYS = { hasMaster: false, hasSelfSigning: false, hasUserSigning: false };
const PASSPHRASE = "correct horse battery staple, twice";
// Few iterations keep the test fast; the count is read from the key description either way.
const ITERATIONS = 10_000;

const setup = useFoundationSetup();

/** Alice with cross-signing, its private keys stored under a key derived from `PASSPHRASE`. */
async function aliceWithPassphrase() {
  setup.watch.secret(PASSPHRASE);
  const aliceAccount = createAccount(setup.server, "alice");
  const alice = await setup.open(aliceAccount);
  const result = await alice.crossSigning.bootstrap({
    createSecretStorageKey: { passphrase: PASSPHRASE, passphraseIterations: ITERATIONS },
  });
  setup.watch.secret(result.recoveryKey);
  return { aliceAccount, alice, result };
}

/** `aliceWithPassphrase`, and a second login of Alice's that holds no private keys yet. */
async function aliceOnANewLaptop() {
  const users = await aliceWithPassphrase();
  const laptop = await setup.open(await loginNewDevice(setup.server, users.aliceAccount));
  return { ...users, laptop };
}

describe("restoring cross-signing from a passphrase", () => {
  it("bootstraps cross-signing under a secret-storage key derived from a passphrase", async () => {
    const { alice, result } = await aliceWithPassphrase();

    expect(result.storedInSecretStorage.sort()).toEqual(["master", "selfSigning", "userSigning"]);
    const keyId = result.secretStorageKey!.keyId;
    expect(await alice.secretStorage.getDefaultKeyId()).toBe(keyId);
    // The key description the server holds names the derivation, so another login can repeat it.
    const description = setup.server.homeserver.state.accountData.get(
      alice.userId,
      `m.secret_storage.key.${keyId}`,
    );
    expect(description).toMatchObject({
      passphrase: { algorithm: "m.pbkdf2", iterations: ITERATIONS, salt: expect.any(String) },
    });
  });

  it("refuses a wrong passphrase with secret storage's typed error and changes nothing", async () => {
    const { laptop } = await aliceOnANewLaptop();
    const { watch } = setup;
    const wrong = "correct horse battery staple, once";
    watch.secret(wrong);
    const control = setup.server.homeserver.control;
    const before = control.requestLog().at(-1)?.seq ?? 0;

    const error = await watch.rejection(laptop.crossSigning.restoreFromPassphrase(wrong));

    expect(error).toMatchObject({ name: "SecretStorageError", code: "bad_key" });
    // The same error secret storage gives for that passphrase.
    const direct = await watch.rejection(laptop.secretStorage.unlockWithPassphrase(wrong));
    expect(direct).toMatchObject({ name: "SecretStorageError", code: "bad_key" });
    expect(await laptop.crossSigning.status()).toEqual(NO_KEYS);
    // It only read the key description: no upload, no signature, no account-data write.
    const sent = control.requestLog().filter((e) => e.seq > before);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.filter((e) => e.method !== "GET")).toEqual([]);
    // The log saw this flow (the leak check after the test reads these lines).
    expect(watch.lines.length).toBeGreaterThan(0);
  });

  it("refuses a passphrase for a key created without one as no_passphrase", async () => {
    const { alice, laptop } = await aliceOnANewLaptop();
    const plain = await alice.secretStorage.createKey({ setAsDefault: false });
    setup.watch.secret(plain.recoveryKey);

    const error = await setup.watch.rejection(
      laptop.crossSigning.restoreFromPassphrase(PASSPHRASE, { keyId: plain.keyId }),
    );

    expect(error).toMatchObject({ name: "SecretStorageError", code: "no_passphrase" });
    expect(await laptop.crossSigning.status()).toEqual(NO_KEYS);
  });

  it("restores the same cross-signing keys on a second login from the passphrase alone", async () => {
    const { alice, laptop } = await aliceOnANewLaptop();

    const result = await laptop.crossSigning.restoreFromPassphrase(PASSPHRASE);

    expect(result.restored.sort()).toEqual(["master", "selfSigning", "userSigning"]);
    expect(result.status).toEqual(ALL_KEYS);
    expect(result.deviceCrossSigned).toBe(true);
    expect(result.secretStorageKey.keyId).toBe(await alice.secretStorage.getDefaultKeyId());
    const [original, restored] = await Promise.all([
      inClient(alice, "exportCrossSigningKeys"),
      inClient(laptop, "exportCrossSigningKeys"),
    ]);
    expect(restored!.masterKey).toBe(original!.masterKey);
    expect(restored!.self_signing_key).toBe(original!.self_signing_key);

    await refreshDeviceLists(alice, [alice.userId]);
    expect(await inClient(alice, "deviceCrossSignedByOwner", alice.userId, laptop.deviceId)).toBe(true);
  });
});
