import { describe, expect, it } from "vitest";
import { CROSS_SIGNING_SECRET_NAMES } from "../../src/secret-storage/cross-signing-secrets.js";
import { encodeRecoveryKey } from "../../src/secret-storage/recovery-key.js";
import { inClient } from "./support/client-mode.js";
import {
  createAccount,
  exchangeEncryptedToDevice,
  loginNewDevice,
  refreshDeviceLists,
  useFoundationSetup,
} from "./support/foundation-fixtures.js";

/**
 * The foundation end to end through the facade an app creates: the mock homeserver on a real
 * socket, the SDK's transport, real crypto-wasm machines, secret storage in the server's account
 * data. Each test builds the accounts it needs on its own server (the helpers below), so any one
 * runs alone; after each, the setup checks that no token or recovery key reached a log, an error
 * or an event.
 */

const ALL_KEYS = { hasMaster: true, hasSelfSigning: true, hasUserSigning: true };
const NO_KEYS = { hasMaster: false, hasSelfSigning: false, hasUserSigning: false };

const setup = useFoundationSetup();

/**
 * Alice and Bob, both with cross-signing; only Alice's private keys are in secret storage, under a
 * new default key whose recovery key is returned.
 */
async function twoCrossSignedUsers() {
  const aliceAccount = createAccount(setup.server, "alice");
  const alice = await setup.open(aliceAccount);
  const bob = await setup.open(createAccount(setup.server, "bob"));
  const aliceResult = await alice.crossSigning.bootstrap({ createSecretStorageKey: true });
  const recoveryKey = aliceResult.recoveryKey;
  if (recoveryKey === undefined) throw new Error("bootstrapping with a new key returned no recovery key");
  setup.watch.secret(recoveryKey);
  const bobResult = await bob.crossSigning.bootstrap();
  return { aliceAccount, alice, bob, aliceResult, bobResult, recoveryKey };
}

/** `twoCrossSignedUsers`, and a second login of Alice's that has published its device keys. */
async function aliceOnANewLaptop() {
  const users = await twoCrossSignedUsers();
  const laptop = await setup.open(await loginNewDevice(setup.server, users.aliceAccount));
  await laptop.processOutgoingRequests();
  return { ...users, laptop };
}

/** `aliceOnANewLaptop`, with the laptop restored from the recovery key. */
async function restoredLaptop() {
  const users = await aliceOnANewLaptop();
  await users.laptop.crossSigning.restoreFromRecoveryKey(users.recoveryKey);
  return users;
}

describe("the foundation through the client facade", () => {
  it("bootstraps cross-signing for two users and keeps one user's private keys in secret storage", async () => {
    const { alice, bob, aliceResult, bobResult, recoveryKey } = await twoCrossSignedUsers();

    expect(recoveryKey).toMatch(/^(\w{4} )+\w{1,4}$/);
    expect(aliceResult.storedInSecretStorage.sort()).toEqual(["master", "selfSigning", "userSigning"]);
    expect(aliceResult.dehydratedDevice).toBeUndefined();
    expect(await alice.secretStorage.getDefaultKeyId()).toBe(aliceResult.secretStorageKey!.keyId);
    expect(bobResult).toStrictEqual({
      recoveryKey: undefined,
      secretStorageKey: undefined,
      storedInSecretStorage: [],
      dehydratedDevice: undefined,
    });

    for (const c of [alice, bob]) {
      expect(await c.crossSigning.status()).toEqual(ALL_KEYS);
      expect(await inClient(c, "crossSigningStatus")).toEqual(ALL_KEYS);
    }
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
    const { alice, bob } = await twoCrossSignedUsers();

    await refreshDeviceLists(alice, [bob.userId]);
    await refreshDeviceLists(bob, [alice.userId]);

    expect(await inClient(alice, "deviceCrossSignedByOwner", bob.userId, bob.deviceId)).toBe(true);
    expect(await inClient(bob, "deviceCrossSignedByOwner", alice.userId, alice.deviceId)).toBe(true);
  });

  it("carries an Olm-encrypted to-device message that only the recipient can read", async () => {
    const { alice, bob } = await twoCrossSignedUsers();
    await refreshDeviceLists(alice, [bob.userId]);
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
    it("starts without the private keys, and bootstrapping would not silently replace the identity", async () => {
      const { alice, bob, laptop } = await aliceOnANewLaptop();
      expect(laptop.deviceId).not.toBe(alice.deviceId);

      const error = await setup.watch.rejection(laptop.crossSigning.bootstrap());

      expect(error).toMatchObject({ name: "SdkError", code: "cross_signing_identity_exists" });
      expect(await laptop.crossSigning.status()).toEqual(NO_KEYS);
      await refreshDeviceLists(bob, [alice.userId]);
      expect(await inClient(bob, "deviceCrossSignedByOwner", alice.userId, laptop.deviceId)).toBe(false);
    });

    it("refuses a recovery key for another key, or a mistyped one, with typed errors that do not repeat it", async () => {
      const { laptop, recoveryKey } = await aliceOnANewLaptop();
      const { watch } = setup;
      const otherKey = encodeRecoveryKey(crypto.getRandomValues(new Uint8Array(32)));
      watch.secret(otherKey);

      expect(await watch.rejection(laptop.crossSigning.restoreFromRecoveryKey(otherKey))).toMatchObject({
        name: "SecretStorageError",
        code: "bad_key",
      });
      // One character changed: the parity byte (or the alphabet) catches it before any network call.
      const typo = recoveryKey.slice(0, 5) + (recoveryKey[5] === "a" ? "b" : "a") + recoveryKey.slice(6);
      watch.secret(typo);
      const typoError = await watch.rejection(laptop.crossSigning.restoreFromRecoveryKey(typo));
      expect(typoError).toMatchObject({ name: "SecretStorageError" });
      expect((typoError as { code: string }).code).toMatch(/^recovery_key_/);
      expect(await laptop.crossSigning.status()).toMatchObject({ hasMaster: false });
      // Both errors, kept by `rejection`, are rendered by the leak check after this test.
    });

    it("restores the cross-signing keys from the recovery key alone and signs its own device", async () => {
      const { alice, laptop, recoveryKey } = await aliceOnANewLaptop();

      const result = await laptop.crossSigning.restoreFromRecoveryKey(recoveryKey);

      expect(result.restored.sort()).toEqual(["master", "selfSigning", "userSigning"]);
      expect(result.status).toEqual(ALL_KEYS);
      expect(result.deviceCrossSigned).toBe(true);
      expect(result.secretStorageKey.keyId).toBe(await alice.secretStorage.getDefaultKeyId());
      expect(await laptop.crossSigning.status()).toEqual(ALL_KEYS);
      // The private keys are the same as the first device's, not a new identity.
      const [original, restored] = await Promise.all([
        inClient(alice, "exportCrossSigningKeys"),
        inClient(laptop, "exportCrossSigningKeys"),
      ]);
      expect(restored!.masterKey).toBe(original!.masterKey);
      expect(restored!.self_signing_key).toBe(original!.self_signing_key);
    });

    it("is seen by the other user as cross-signed by its owner", async () => {
      const { alice, bob, laptop } = await restoredLaptop();

      await refreshDeviceLists(bob, [alice.userId]);
      expect(await inClient(bob, "deviceCrossSignedByOwner", alice.userId, laptop.deviceId)).toBe(true);
      // The first device is still trusted: the identity was restored, not replaced.
      expect(await inClient(bob, "deviceCrossSignedByOwner", alice.userId, alice.deviceId)).toBe(true);

      await refreshDeviceLists(laptop, [laptop.userId]);
      expect(await inClient(laptop, "deviceCrossSignedByOwner", laptop.userId, laptop.deviceId)).toBe(true);
    });

    it("is a device the other user can send encrypted to-device messages to", async () => {
      const { alice, bob, laptop } = await restoredLaptop();
      await refreshDeviceLists(bob, [alice.userId]);
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
});
