import { describe, expect, it } from "vitest";
import { KeyStore } from "../../../src/testing/state/key-store.js";

const ALICE = "@alice:localhost";
const BOB = "@bob:localhost";

function deviceKeys(userId: string, deviceId: string, ed25519 = "edKey", curve = "curveKey") {
  return {
    user_id: userId,
    device_id: deviceId,
    algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
    keys: { [`ed25519:${deviceId}`]: ed25519, [`curve25519:${deviceId}`]: curve },
    signatures: { [userId]: { [`ed25519:${deviceId}`]: "selfsig" } },
  };
}

function signedKey(key: string, signature = "sig", fallback?: boolean) {
  return {
    key,
    ...(fallback ? { fallback: true } : {}),
    signatures: { [ALICE]: { "ed25519:DEV": signature } },
  };
}

describe("KeyStore one-time keys", () => {
  it("hands out one-time keys oldest first and removes each one it hands out", () => {
    const store = new KeyStore();
    store.addOneTimeKeys(ALICE, "DEV", { "signed_curve25519:AAA": signedKey("k1") });
    store.addOneTimeKeys(ALICE, "DEV", {
      "signed_curve25519:CCC": signedKey("k2"),
      "signed_curve25519:BBB": signedKey("k3"),
    });

    const order = [1, 2, 3].map(() => store.claimKey(ALICE, "DEV", "signed_curve25519")?.keyId);

    expect(order).toEqual(["signed_curve25519:AAA", "signed_curve25519:CCC", "signed_curve25519:BBB"]);
    expect(store.claimKey(ALICE, "DEV", "signed_curve25519")).toBeUndefined();
    expect(store.oneTimeKeyCounts(ALICE, "DEV")).toEqual({});
  });

  it("counts unclaimed keys per algorithm", () => {
    const store = new KeyStore();
    store.addOneTimeKeys(ALICE, "DEV", {
      "signed_curve25519:A": signedKey("k1"),
      "signed_curve25519:B": signedKey("k2"),
      "curve25519:C": "plain",
    });
    store.claimKey(ALICE, "DEV", "signed_curve25519");

    expect(store.oneTimeKeyCounts(ALICE, "DEV")).toEqual({ signed_curve25519: 1, curve25519: 1 });
    expect(store.oneTimeKeyCounts(ALICE, "OTHER")).toEqual({});
  });

  it("accepts a re-sent key with other signatures but refuses a different key under a used id", () => {
    const store = new KeyStore();
    store.addOneTimeKeys(ALICE, "DEV", { "signed_curve25519:A": signedKey("k1", "sig1") });

    expect(store.addOneTimeKeys(ALICE, "DEV", { "signed_curve25519:A": signedKey("k1", "sig2") })).toEqual({
      ok: true,
      added: 0,
    });
    const conflict = store.addOneTimeKeys(ALICE, "DEV", {
      "signed_curve25519:B": signedKey("k2"),
      "signed_curve25519:A": signedKey("other"),
    });

    expect(conflict).toEqual({ ok: false, conflictingKeyId: "signed_curve25519:A" });
    // All or nothing: the new key B in the refused batch was not stored.
    expect(store.oneTimeKeyCounts(ALICE, "DEV")).toEqual({ signed_curve25519: 1 });
  });

  it("can keep the stored key on a conflict and store the rest of the batch instead", () => {
    const store = new KeyStore();
    store.addOneTimeKeys(ALICE, "DEV", { "signed_curve25519:A": signedKey("k1") });

    const result = store.addOneTimeKeys(
      ALICE,
      "DEV",
      { "signed_curve25519:A": signedKey("other"), "signed_curve25519:B": signedKey("k2") },
      "keep-existing",
    );

    expect(result).toEqual({ ok: true, added: 1 });
    expect((store.claimKey(ALICE, "DEV", "signed_curve25519")!.key as { key: string }).key).toBe("k1");
  });

  it("returns copies, so changing a claimed key does not change what is stored", () => {
    const store = new KeyStore();
    const uploaded = signedKey("k1");
    store.setFallbackKeys(ALICE, "DEV", { "signed_curve25519:F": uploaded });
    uploaded.key = "mutated by the uploader";

    const first = store.claimKey(ALICE, "DEV", "signed_curve25519")!;
    (first.key as { key: string }).key = "mutated by the claimer";

    expect((store.claimKey(ALICE, "DEV", "signed_curve25519")!.key as { key: string }).key).toBe("k1");
  });
});

describe("KeyStore fallback keys", () => {
  it("hands out the fallback key only when no one-time key is left, marks it used, and keeps it", () => {
    const store = new KeyStore();
    store.addOneTimeKeys(ALICE, "DEV", { "signed_curve25519:A": signedKey("otk") });
    store.setFallbackKeys(ALICE, "DEV", { "signed_curve25519:F": signedKey("fb", "sig", true) });

    const first = store.claimKey(ALICE, "DEV", "signed_curve25519");
    expect(first).toMatchObject({ keyId: "signed_curve25519:A", fallback: false });
    expect(store.unusedFallbackKeyTypes(ALICE, "DEV")).toEqual(["signed_curve25519"]);

    const second = store.claimKey(ALICE, "DEV", "signed_curve25519");
    const third = store.claimKey(ALICE, "DEV", "signed_curve25519");

    expect(second).toMatchObject({ keyId: "signed_curve25519:F", fallback: true });
    expect(third).toEqual(second);
    expect(store.unusedFallbackKeyTypes(ALICE, "DEV")).toEqual([]);
  });

  it("keeps the used flag when the same fallback key is uploaded again and clears it for a new key", () => {
    const store = new KeyStore();
    store.setFallbackKeys(ALICE, "DEV", { "signed_curve25519:F": signedKey("fb", "sig", true) });
    store.claimKey(ALICE, "DEV", "signed_curve25519");

    store.setFallbackKeys(ALICE, "DEV", { "signed_curve25519:F": signedKey("fb", "sig", true) });
    expect(store.unusedFallbackKeyTypes(ALICE, "DEV")).toEqual([]);

    store.setFallbackKeys(ALICE, "DEV", { "signed_curve25519:G": signedKey("fb2", "sig", true) });
    expect(store.unusedFallbackKeyTypes(ALICE, "DEV")).toEqual(["signed_curve25519"]);
    expect(store.claimKey(ALICE, "DEV", "signed_curve25519")?.keyId).toBe("signed_curve25519:G");
  });

  it("returns nothing for a device with neither kind of key", () => {
    const store = new KeyStore();
    expect(store.claimKey(ALICE, "NOPE", "signed_curve25519")).toBeUndefined();
    store.addOneTimeKeys(ALICE, "DEV", { "curve25519:A": "k" });
    expect(store.claimKey(ALICE, "DEV", "signed_curve25519")).toBeUndefined();
  });
});

describe("KeyStore device keys and the change stream", () => {
  it("logs a device-list change only when the device keys really change", () => {
    const store = new KeyStore();
    expect(store.setDeviceKeys(ALICE, "DEV", deviceKeys(ALICE, "DEV"))).toBe(true);
    const after = store.position;

    expect(store.setDeviceKeys(ALICE, "DEV", deviceKeys(ALICE, "DEV"))).toBe(false);
    expect(store.position).toBe(after);
    expect(store.setDeviceKeys(ALICE, "DEV", deviceKeys(ALICE, "DEV", "newEd"))).toBe(true);
    expect(store.position).toBe(after + 1);
    expect(store.deviceKeys(ALICE, "DEV")?.keys).toEqual({
      "ed25519:DEV": "newEd",
      "curve25519:DEV": "curveKey",
    });
  });

  it("reports each changed user once for changes after a position", () => {
    const store = new KeyStore();
    store.noteDeviceListChange(ALICE);
    const since = store.position;
    store.noteDeviceListChange(BOB);
    store.noteDeviceListChange(ALICE);
    store.noteDeviceListChange(BOB);

    expect(store.changedUsersSince(ALICE, since).sort()).toEqual([ALICE, BOB]);
    expect(store.changedUsersSince(ALICE, store.position)).toEqual([]);
    expect(store.changedUsersSince(ALICE, 0).sort()).toEqual([ALICE, BOB]);
  });

  it("reads only the log entries after the position asked for, however long the history", () => {
    const store = new KeyStore();
    for (let i = 0; i < 5_000; i++) store.noteDeviceListChange(`@user${i}:localhost`);
    const since = store.position;
    store.noteDeviceListChange(ALICE);
    store.noteDeviceListChange(BOB);

    const before = store.workDone;
    const changed = store.changedUsersSince(ALICE, since);

    expect(changed.sort()).toEqual([ALICE, BOB]);
    expect(store.workDone - before).toBe(2);
  });

  it("compacts repeated changes of the same users so the log stays small", () => {
    const store = new KeyStore();
    for (let i = 0; i < 10_000; i++) store.noteDeviceListChange(i % 2 === 0 ? ALICE : BOB);

    const before = store.workDone;
    expect(store.changedUsersSince(BOB, 0).sort()).toEqual([ALICE, BOB]);
    expect(store.workDone - before).toBeLessThanOrEqual(64);
  });

  it("tells only the signer about a user-signing signature change", () => {
    const store = new KeyStore();
    const since = store.position;
    store.noteSignatureBy(ALICE, BOB);

    expect(store.changedUsersSince(ALICE, since)).toEqual([BOB]);
    expect(store.changedUsersSince(BOB, since)).toEqual([]);
  });

  it("announces changes to listeners and stops after unsubscribing", () => {
    const store = new KeyStore();
    const seen: string[] = [];
    const off = store.onChange((change) => seen.push(`${change.kind}:${change.userId}`));
    store.noteDeviceListChange(ALICE);
    store.addOneTimeKeys(BOB, "DEV", { "curve25519:A": "k" });
    off();
    store.noteDeviceListChange(BOB);

    expect(seen).toEqual([`device-list:${ALICE}`, `key-counts:${BOB}`]);
  });

  it("forgets every key of a deleted device but not the user's other devices", () => {
    const store = new KeyStore();
    for (const id of ["ONE", "TWO"]) {
      store.setDeviceKeys(ALICE, id, deviceKeys(ALICE, id));
      store.addOneTimeKeys(ALICE, id, { "signed_curve25519:A": signedKey("otk") });
      store.setFallbackKeys(ALICE, id, { "signed_curve25519:F": signedKey("fb", "s", true) });
      store.addSignature(ALICE, id, ALICE, "ed25519:ssk", "sskSig");
    }

    store.deleteDevice(ALICE, "ONE");

    expect(store.deviceKeys(ALICE, "ONE")).toBeUndefined();
    expect(store.claimKey(ALICE, "ONE", "signed_curve25519")).toBeUndefined();
    expect(store.unusedFallbackKeyTypes(ALICE, "ONE")).toEqual([]);
    expect(store.deviceIdsWithKeys(ALICE)).toEqual(["TWO"]);
    expect(store.oneTimeKeyCounts(ALICE, "TWO")).toEqual({ signed_curve25519: 1 });
    // A device re-created under the same id does not inherit the old device's signatures.
    store.setDeviceKeys(ALICE, "ONE", deviceKeys(ALICE, "ONE"));
    expect(store.deviceKeys(ALICE, "ONE")?.signatures).toEqual({ [ALICE]: { "ed25519:ONE": "selfsig" } });
  });
});

describe("KeyStore cross-signing keys and signatures", () => {
  const master = { user_id: ALICE, usage: ["master"], keys: { "ed25519:MPUB": "MPUB" } };
  const selfSigning = {
    user_id: ALICE,
    usage: ["self_signing"],
    keys: { "ed25519:SPUB": "SPUB" },
    signatures: { [ALICE]: { "ed25519:MPUB": "m-sig" } },
  };
  const userSigning = { user_id: ALICE, usage: ["user_signing"], keys: { "ed25519:UPUB": "UPUB" } };

  it("announces master and self-signing changes to everyone but a user-signing change only to its owner", () => {
    const store = new KeyStore();
    const start = store.position;
    store.setCrossSigningKeys(ALICE, { user_signing: userSigning });
    expect(store.changedUsersSince(BOB, start)).toEqual([]);
    expect(store.changedUsersSince(ALICE, start)).toEqual([ALICE]);

    const next = store.position;
    store.setCrossSigningKeys(ALICE, { master, self_signing: selfSigning });
    expect(store.changedUsersSince(BOB, next)).toEqual([ALICE]);

    const unchanged = store.position;
    store.setCrossSigningKeys(ALICE, { master });
    expect(store.position).toBe(unchanged);
    expect(store.hasSameCrossSigningKey(ALICE, "master", master)).toBe(true);
    expect(store.crossSigningPublicKey(ALICE, "self_signing")).toBe("SPUB");
  });

  it("merges a device's self-signing signature for every viewer", () => {
    const store = new KeyStore();
    store.setDeviceKeys(ALICE, "DEV", deviceKeys(ALICE, "DEV"));
    store.addSignature(ALICE, "DEV", ALICE, "ed25519:SPUB", "ssk-sig");

    expect(store.deviceKeys(ALICE, "DEV")?.signatures).toEqual({
      [ALICE]: { "ed25519:DEV": "selfsig", "ed25519:SPUB": "ssk-sig" },
    });
  });

  it("shows a signature on a master key only to the user who made it", () => {
    const store = new KeyStore();
    store.setCrossSigningKeys(ALICE, { master });
    store.addSignature(ALICE, "MPUB", BOB, "ed25519:BOBUSK", "bob-sig");

    expect(store.crossSigningKey(ALICE, "master", BOB)?.signatures).toEqual({
      [BOB]: { "ed25519:BOBUSK": "bob-sig" },
    });
    expect(store.crossSigningKey(ALICE, "master", ALICE)?.signatures).toBeUndefined();
    expect(store.crossSigningKey(ALICE, "master", "@carol:localhost")).toEqual(master);
  });
});
