import { describe, expect, it } from "vitest";
import type { E2eeClient } from "../../src/client.js";
import { getCrossSigningStatus, isDeviceCrossSignedByOwner } from "../../src/crypto/cross-signing.js";
import {
  type Account,
  createAccount,
  loginNewDevice,
  refreshDeviceLists,
  useFoundationSetup,
} from "./support/foundation-fixtures.js";

/**
 * A user who chose a passphrase instead of writing down a recovery key: the secret-storage key is
 * derived from it (`m.pbkdf2`), and a new login restores cross-signing from the passphrase alone,
 * through the facade over the mock homeserver's real socket.
 */

const ALL_KEYS = { hasMaster: true, hasSelfSigning: true, hasUserSigning: true };
const NO_KEYS = { hasMaster: false, hasSelfSigning: false, hasUserSigning: false };
const PASSPHRASE = "correct horse battery staple, twice";
// Few iterations keep the test fast; the count is read from the key description either way.
const ITERATIONS = 10_000;

const setup = useFoundationSetup();
const { watch, open } = setup;

describe("restoring cross-signing from a passphrase", () => {
  let aliceAccount: Account;
  let alice: E2eeClient;
  let laptop: E2eeClient;

  it("bootstraps cross-signing under a secret-storage key derived from a passphrase", async () => {
    watch.secret(PASSPHRASE);
    aliceAccount = createAccount(setup.server, "alice");
    alice = await open(aliceAccount);

    const result = await alice.bootstrapCrossSigning({
      createSecretStorageKey: { passphrase: PASSPHRASE, passphraseIterations: ITERATIONS },
    });
    watch.secret(result.recoveryKey);
    expect(result.storedInSecretStorage.sort()).toEqual(["master", "selfSigning", "userSigning"]);
    const description = await alice.secretStorage.getKeyDescription(result.secretStorageKey!.keyId);
    expect(description?.passphrase).toMatchObject({ algorithm: "m.pbkdf2", iterations: ITERATIONS });
  });

  it("refuses a wrong passphrase with secret storage's typed error and changes nothing", async () => {
    laptop = await open(await loginNewDevice(setup.server, aliceAccount));
    const wrong = "correct horse battery staple, once";
    watch.secret(wrong);
    const control = setup.server.homeserver.control;
    const before = control.requestLog().at(-1)?.seq ?? 0;

    const error = await watch.rejection(laptop.restoreFromPassphrase(wrong));

    expect(error).toMatchObject({ name: "SecretStorageError", code: "bad_key" });
    // The same error secret storage gives for that passphrase.
    const direct = await watch.rejection(laptop.secretStorage.unlockWithPassphrase(wrong));
    expect(direct).toMatchObject({ name: "SecretStorageError", code: "bad_key" });
    expect(await getCrossSigningStatus(laptop.machine)).toEqual(NO_KEYS);
    // It only read the key description: no upload, no signature, no account-data write.
    const sent = control.requestLog().filter((e) => e.seq > before);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.filter((e) => e.method !== "GET")).toEqual([]);
  });

  it("refuses a passphrase for a key created without one as no_passphrase", async () => {
    const plain = await alice.secretStorage.createKey({ setAsDefault: false });
    watch.secret(plain.recoveryKey);

    const error = await watch.rejection(laptop.restoreFromPassphrase(PASSPHRASE, { keyId: plain.keyId }));

    expect(error).toMatchObject({ name: "SecretStorageError", code: "no_passphrase" });
    expect(await getCrossSigningStatus(laptop.machine)).toEqual(NO_KEYS);
  });

  it("restores the same cross-signing keys on a second login from the passphrase alone", async () => {
    const result = await laptop.restoreFromPassphrase(PASSPHRASE);

    expect(result.restored.sort()).toEqual(["master", "selfSigning", "userSigning"]);
    expect(result.status).toEqual(ALL_KEYS);
    expect(result.deviceCrossSigned).toBe(true);
    expect(result.secretStorageKey.keyId).toBe(await alice.secretStorage.getDefaultKeyId());
    const [original, restored] = await Promise.all([
      alice.machine.exportCrossSigningKeys(),
      laptop.machine.exportCrossSigningKeys(),
    ]);
    expect(restored!.masterKey).toBe(original!.masterKey);
    expect(restored!.self_signing_key).toBe(original!.self_signing_key);

    await refreshDeviceLists(alice, [alice.userId]);
    expect(await isDeviceCrossSignedByOwner(alice.machine, alice.userId, laptop.deviceId)).toBe(true);
  });

  it("never wrote either passphrase, a recovery key or an access token to a log line, an error or an event", () => {
    expect(watch.lines.length).toBeGreaterThan(0);
    // The count only: printing a matching line would put the passphrase into the test output.
    expect(watch.lines.filter((line) => line.includes(PASSPHRASE)).length).toBe(0);
    watch.expectNoLeaks();
  });
});
