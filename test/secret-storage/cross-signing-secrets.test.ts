import * as W from "@matrix-org/matrix-sdk-crypto-wasm";
import { type AccountDataClient, ServerSideSecretStorageImpl } from "matrix-js-sdk/lib/secret-storage.js";
import { beforeAll, describe, expect, it } from "vitest";
import {
  CROSS_SIGNING_SECRET_NAMES,
  restoreCrossSigningKeys,
  storeCrossSigningKeys,
} from "../../src/secret-storage/cross-signing-secrets.js";
import { SecretStorage } from "../../src/secret-storage/secret-storage.js";
import { InMemoryAccountData } from "./in-memory-account-data.js";

const USER = "@alice:example.org";

beforeAll(async () => {
  await W.initAsync();
});

async function machine(deviceId: string): Promise<W.OlmMachine> {
  return W.OlmMachine.initialize(new W.UserId(USER), new W.DeviceId(deviceId));
}

async function status(m: W.OlmMachine) {
  const s = await m.crossSigningStatus();
  const out = { hasMaster: s.hasMaster, hasSelfSigning: s.hasSelfSigning, hasUserSigning: s.hasUserSigning };
  s.free();
  return out;
}

async function seeds(m: W.OlmMachine) {
  const e = (await m.exportCrossSigningKeys())!;
  const out = { master: e.masterKey, selfSigning: e.self_signing_key, userSigning: e.userSigningKey };
  e.free();
  return out;
}

/** The first device: a fresh identity, as `bootstrapCrossSigning(true)` makes it, with its public keys. */
async function bootstrapped(deviceId: string) {
  const m = await machine(deviceId);
  const requests = await m.bootstrapCrossSigning(true);
  const upload = JSON.parse(requests.uploadSigningKeysRequest.body) as Record<string, unknown>;
  requests.free();
  return { machine: m, publicKeys: upload };
}

/**
 * Lets a new login learn its own public identity the way it would from the server: answering the
 * machine's own `/keys/query` with the keys the first device uploaded. crypto-wasm imports private
 * keys only when they match an identity it knows.
 */
async function learnOwnIdentity(m: W.OlmMachine, publicKeys: Record<string, unknown>): Promise<void> {
  const query = (await m.outgoingRequests()).find((r) => r.type === W.RequestType.KeysQuery);
  if (!query) throw new Error("the new machine did not ask for its own keys");
  const response = {
    device_keys: { [USER]: {} },
    failures: {},
    master_keys: { [USER]: publicKeys.master_key },
    self_signing_keys: { [USER]: publicKeys.self_signing_key },
    user_signing_keys: { [USER]: publicKeys.user_signing_key },
  };
  await m.markRequestAsSent(query.id!, query.type, JSON.stringify(response));
}

describe("cross-signing keys in secret storage", () => {
  it("restores all three private keys into a fresh machine given only the recovery key", async () => {
    const first = await bootstrapped("FIRSTDEVICE");
    const accountData = new InMemoryAccountData();
    const created = await new SecretStorage(accountData).createKey();
    const stored = await storeCrossSigningKeys(first.machine, new SecretStorage(accountData), created);
    expect(stored).toEqual(["master", "selfSigning", "userSigning"]);
    for (const name of Object.values(CROSS_SIGNING_SECRET_NAMES)) {
      expect(accountData.entries.has(name)).toBe(true);
    }

    const second = await machine("SECONDDEVICE");
    expect(await status(second)).toEqual({ hasMaster: false, hasSelfSigning: false, hasUserSigning: false });
    await learnOwnIdentity(second, first.publicKeys);

    const storage = new SecretStorage(accountData);
    const key = await storage.unlockWithRecoveryKey(created.recoveryKey);
    const result = await restoreCrossSigningKeys(second, storage, key);
    const all = { hasMaster: true, hasSelfSigning: true, hasUserSigning: true };
    expect(result).toEqual({ found: ["master", "selfSigning", "userSigning"], status: all });
    expect(await status(second)).toEqual(all);
    expect(await seeds(second)).toEqual(await seeds(first.machine));
  });

  it("stores seeds matrix-js-sdk reads back as the same text", async () => {
    const first = await bootstrapped("JSREADER");
    const accountData = new InMemoryAccountData();
    const created = await new SecretStorage(accountData).createKey();
    await storeCrossSigningKeys(first.machine, new SecretStorage(accountData), created);
    const theirs = new ServerSideSecretStorageImpl(accountData as unknown as AccountDataClient, {
      getSecretStorageKey: async () => [created.keyId, Uint8Array.from(created.key)],
    });
    const exported = await seeds(first.machine);
    expect(await theirs.get("m.cross_signing.master")).toBe(exported.master);
    expect(await theirs.get("m.cross_signing.self_signing")).toBe(exported.selfSigning);
    expect(await theirs.get("m.cross_signing.user_signing")).toBe(exported.userSigning);
  });

  it("imports nothing into a machine that has not yet learnt its own identity", async () => {
    const first = await bootstrapped("FIRST2");
    const accountData = new InMemoryAccountData();
    const created = await new SecretStorage(accountData).createKey();
    await storeCrossSigningKeys(first.machine, new SecretStorage(accountData), created);
    const result = await restoreCrossSigningKeys(
      await machine("UNAWARE"),
      new SecretStorage(accountData),
      created,
    );
    expect(result.found).toEqual(["master", "selfSigning", "userSigning"]);
    expect(result.status).toEqual({ hasMaster: false, hasSelfSigning: false, hasUserSigning: false });
  });

  it("refuses stored keys of an older identity with cross_signing_mismatch", async () => {
    const old = await bootstrapped("OLDIDENTITY");
    const current = await bootstrapped("NEWIDENTITY");
    const accountData = new InMemoryAccountData();
    const created = await new SecretStorage(accountData).createKey();
    await storeCrossSigningKeys(old.machine, new SecretStorage(accountData), created);
    const fresh = await machine("FRESH");
    await learnOwnIdentity(fresh, current.publicKeys);
    await expect(
      restoreCrossSigningKeys(fresh, new SecretStorage(accountData), created),
    ).rejects.toMatchObject({
      code: "cross_signing_mismatch",
    });
    expect(await status(fresh)).toEqual({ hasMaster: false, hasSelfSigning: false, hasUserSigning: false });
  });

  it("rejects a stored seed that is not 32 bytes of base64 as malformed", async () => {
    const accountData = new InMemoryAccountData();
    const storage = new SecretStorage(accountData);
    const created = await storage.createKey();
    await storage.store("m.cross_signing.master", "dG9vIHNob3J0", created);
    await expect(restoreCrossSigningKeys(await machine("BADSEED"), storage, created)).rejects.toMatchObject({
      code: "malformed",
    });
  });

  it("reports an empty store as a value, not an error", async () => {
    const accountData = new InMemoryAccountData();
    const storage = new SecretStorage(accountData);
    const created = await storage.createKey();
    const result = await restoreCrossSigningKeys(await machine("EMPTY"), storage, created);
    expect(result).toEqual({
      found: [],
      status: { hasMaster: false, hasSelfSigning: false, hasUserSigning: false },
    });
  });

  it("fails with a typed error when the key is wrong or the machine has nothing to store", async () => {
    const first = await bootstrapped("FIRST3");
    const accountData = new InMemoryAccountData();
    const storage = new SecretStorage(accountData);
    const created = await storage.createKey();
    await storeCrossSigningKeys(first.machine, storage, created);
    const other = await storage.createKey();
    await expect(restoreCrossSigningKeys(await machine("X"), storage, other)).rejects.toMatchObject({
      code: "not_stored",
    });
    await expect(
      restoreCrossSigningKeys(await machine("Y"), storage, { keyId: created.keyId, key: other.key }),
    ).rejects.toMatchObject({ code: "bad_mac" });
    await expect(storeCrossSigningKeys(await machine("NOCROSS"), storage, created)).rejects.toMatchObject({
      code: "no_cross_signing_keys",
    });
  });
});
