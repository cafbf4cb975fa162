import { describe, expect, it } from "vitest";
import type { E2eeClient } from "../../src/client.js";
import { getCrossSigningStatus, isDeviceCrossSignedByOwner } from "../../src/crypto/cross-signing.js";
import { CROSS_SIGNING_SECRET_NAMES } from "../../src/secret-storage/cross-signing-secrets.js";
import { encodeRecoveryKey } from "../../src/secret-storage/recovery-key.js";
import {
  type Account,
  createAccount,
  exchangeEncryptedToDevice,
  loginNewDevice,
  refreshDeviceLists,
  useFoundationSetup,
} from "./support/foundation-fixtures.js";

/**
 * The foundation end to end through the facade an app creates: the mock homeserver on a real
 * socket, the SDK's transport, real crypto-wasm machines, secret storage in the server's account
 * data.
 */

const ALL_KEYS = { hasMaster: true, hasSelfSigning: true, hasUserSigning: true };

const setup = useFoundationSetup();
const { watch, open } = setup;

describe("the foundation through the client facade", () => {
  let aliceAccount: Account;
  let alice: E2eeClient;
  let bob: E2eeClient;
  let recoveryKey: string;

  it("bootstraps cross-signing for two users and keeps one user's private keys in secret storage", async () => {
    aliceAccount = createAccount(setup.server, "alice");
    alice = await open(aliceAccount);
    bob = await open(createAccount(setup.server, "bob"));

    const aliceResult = await alice.bootstrapCrossSigning({ createSecretStorageKey: true });
    expect(aliceResult.recoveryKey).toMatch(/^(\w{4} )+\w{1,4}$/);
    recoveryKey = aliceResult.recoveryKey!;
    watch.secret(recoveryKey);
    expect(aliceResult.storedInSecretStorage.sort()).toEqual(["master", "selfSigning", "userSigning"]);
    expect(await alice.secretStorage.getDefaultKeyId()).toBe(aliceResult.secretStorageKey!.keyId);

    const bobResult = await bob.bootstrapCrossSigning();
    expect(bobResult).toEqual({
      recoveryKey: undefined,
      secretStorageKey: undefined,
      storedInSecretStorage: [],
    });

    for (const c of [alice, bob]) expect(await getCrossSigningStatus(c.machine)).toEqual(ALL_KEYS);
    // The server holds the secrets only encrypted, under the new default key.
    const stored = setup.server.homeserver.state.accountData.get(
      alice.userId,
      CROSS_SIGNING_SECRET_NAMES.master,
    );
    expect(Object.keys((stored as { encrypted: object }).encrypted)).toEqual([
      aliceResult.secretStorageKey!.keyId,
    ]);
  });

  it("lets each user see the other's device as cross-signed by its owner", async () => {
    await refreshDeviceLists(alice, [bob.userId]);
    await refreshDeviceLists(bob, [alice.userId]);

    expect(await isDeviceCrossSignedByOwner(alice.machine, bob.userId, bob.deviceId)).toBe(true);
    expect(await isDeviceCrossSignedByOwner(bob.machine, alice.userId, alice.deviceId)).toBe(true);
  });

  it("carries an Olm-encrypted to-device message that only the recipient can read", async () => {
    const secret = { body: "meet at the usual place", nonce: crypto.randomUUID() };
    const { sent, decrypted } = await exchangeEncryptedToDevice(
      setup.server,
      alice,
      bob,
      "org.example.note",
      secret,
    );

    expect(sent).toMatchObject({ algorithm: "m.olm.v1.curve25519-aes-sha2" });
    expect(JSON.stringify(sent)).not.toContain(secret.nonce);
    expect(decrypted).toMatchObject({ type: "org.example.note", sender: alice.userId, content: secret });
  });

  describe("a new login of the same user", () => {
    let laptop: E2eeClient;

    it("starts without the private keys, and bootstrapping would not silently replace the identity", async () => {
      laptop = await open(await loginNewDevice(setup.server, aliceAccount));
      expect(laptop.deviceId).not.toBe(alice.deviceId);
      await laptop.processOutgoingRequests();

      const error = await watch.rejection(laptop.bootstrapCrossSigning());
      expect(error).toMatchObject({ code: "cross_signing_identity_exists" });
      expect(await getCrossSigningStatus(laptop.machine)).toEqual({
        hasMaster: false,
        hasSelfSigning: false,
        hasUserSigning: false,
      });
      await refreshDeviceLists(bob, [alice.userId]);
      expect(await isDeviceCrossSignedByOwner(bob.machine, alice.userId, laptop.deviceId)).toBe(false);
    });

    it("refuses a recovery key for another key, or a mistyped one, with typed errors that do not repeat it", async () => {
      const otherKey = encodeRecoveryKey(crypto.getRandomValues(new Uint8Array(32)));
      watch.secret(otherKey);
      expect(await watch.rejection(laptop.restoreFromRecoveryKey(otherKey))).toMatchObject({
        name: "SecretStorageError",
        code: "bad_key",
      });
      // One character changed: the parity byte (or the alphabet) catches it before any network call.
      const typo = recoveryKey.slice(0, 5) + (recoveryKey[5] === "a" ? "b" : "a") + recoveryKey.slice(6);
      watch.secret(typo);
      const typoError = await watch.rejection(laptop.restoreFromRecoveryKey(typo));
      expect(typoError).toMatchObject({ name: "SecretStorageError" });
      expect((typoError as { code: string }).code).toMatch(/^recovery_key_/);
      expect(await getCrossSigningStatus(laptop.machine)).toMatchObject({ hasMaster: false });
    });

    it("restores the cross-signing keys from the recovery key alone and signs its own device", async () => {
      const result = await laptop.restoreFromRecoveryKey(recoveryKey);

      expect(result.restored.sort()).toEqual(["master", "selfSigning", "userSigning"]);
      expect(result.status).toEqual(ALL_KEYS);
      expect(result.deviceCrossSigned).toBe(true);
      expect(await getCrossSigningStatus(laptop.machine)).toEqual(ALL_KEYS);
      // The private keys are the same as the first device's, not a new identity.
      const [original, restored] = await Promise.all([
        alice.machine.exportCrossSigningKeys(),
        laptop.machine.exportCrossSigningKeys(),
      ]);
      expect(restored!.masterKey).toBe(original!.masterKey);
      expect(restored!.self_signing_key).toBe(original!.self_signing_key);
    });

    it("is seen by the other user as cross-signed by its owner", async () => {
      await refreshDeviceLists(bob, [alice.userId]);
      expect(await isDeviceCrossSignedByOwner(bob.machine, alice.userId, laptop.deviceId)).toBe(true);
      // The first device is still trusted: the identity was restored, not replaced.
      expect(await isDeviceCrossSignedByOwner(bob.machine, alice.userId, alice.deviceId)).toBe(true);

      await refreshDeviceLists(laptop, [laptop.userId]);
      expect(await isDeviceCrossSignedByOwner(laptop.machine, laptop.userId, laptop.deviceId)).toBe(true);
    });

    it("is a device the other user can send encrypted to-device messages to", async () => {
      const note = { body: "welcome, new laptop", nonce: crypto.randomUUID() };
      const { decrypted } = await exchangeEncryptedToDevice(
        setup.server,
        bob,
        laptop,
        "org.example.note",
        note,
      );
      expect(decrypted).toMatchObject({ sender: bob.userId, content: note });
    });
  });

  it("never wrote an access token or a recovery key to the log or into an error", () => {
    expect(watch.errors.length).toBeGreaterThan(0);
    watch.expectNoLeaks();
  });
});
