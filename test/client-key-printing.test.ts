import { Console } from "node:console";
import { PassThrough } from "node:stream";
import { inspect } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { loadCryptoWasm } from "../src/crypto/load-wasm.js";
import type { SecretStorageKey } from "../src/secret-storage/key-holder.js";
import { createMockHomeserver } from "../src/testing/index.js";
import { useInProcessClients } from "./support/in-process-clients.js";

/**
 * Secret-storage keys the client hands out print only their id: an app that logs a result, a key
 * or an error holding one leaks no key bytes. Yet they stay plain data: a structured clone (a
 * worker's `postMessage`) carries the id and the bytes. Against the mock homeserver in-process.
 */

beforeAll(() => loadCryptoWasm());

const PASSWORD = "pw-for-printing";
const { newUser, secondLogin } = useInProcessClients(PASSWORD);

/** What `console.log(value)` writes, through a real `Console` (Node's own formatting). */
function consoleLogged(value: unknown): string {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (chunk: Buffer) => chunks.push(chunk));
  new Console({ stdout: out, stderr: out }).log(value);
  return Buffer.concat(chunks).toString("utf8");
}

/** Every text form a sink might print key bytes in. */
function byteForms(bytes: Uint8Array): string[] {
  const buffer = Buffer.from(bytes);
  const base64 = buffer.toString("base64");
  return [
    base64,
    base64.replace(/=+$/, ""),
    buffer.toString("base64url"),
    buffer.toString("hex"),
    buffer.toString("hex").toUpperCase(),
    [...bytes].join(","),
    [...bytes].join(", "),
  ];
}

/** `text` shows none of `bytes`' forms; whitespace is ignored for the decimal list (inspect wraps it). */
function expectNoBytes(text: string, bytes: Uint8Array): void {
  const compact = text.replace(/\s+/g, "");
  const hits = byteForms(bytes).filter((form) => text.includes(form) || compact.includes(form));
  // The count only: printing a hit would put the key into the test output.
  expect(hits.length, "the key bytes were printed").toBe(0);
}

/** How an app might print a key, each way. */
function printed(value: unknown) {
  return {
    inspect: inspect(value),
    deepInspect: inspect({ nested: { value } }, { depth: 10 }),
    consoleLog: consoleLogged(value),
    consoleLogNested: consoleLogged({ result: { value } }),
    json: JSON.stringify(value),
    jsonNested: JSON.stringify({ result: { value } }),
    string: String(value),
    template: `${value}`,
  };
}

/** The printing and cloning contract of one key the client returned. */
function expectKeyPrintsOnlyItsId(
  key: SecretStorageKey,
  label: string,
  secrets: readonly string[] = [],
): void {
  expect(key.key).toBeInstanceOf(Uint8Array);
  expect(key.key).toHaveLength(32);
  const forms = printed(key);
  for (const text of Object.values(forms)) {
    expect(text).toContain(key.keyId);
    expectNoBytes(text, key.key);
    for (const secret of secrets) expect(text.includes(secret), "a secret was printed").toBe(false);
  }
  expect(forms.inspect).toBe(`${label} { keyId: ${JSON.stringify(key.keyId)} }`);
  expect(forms.consoleLog).toBe(`${forms.inspect}\n`);
  expect(JSON.parse(forms.json)).toEqual({ keyId: key.keyId });
  expect(forms.string).toBe(`${label}(${key.keyId})`);
  expect(forms.template).toBe(forms.string);

  // Worker-ready: the clone is plain data with the id and the same bytes (a copy, not a view).
  const clone = structuredClone(key);
  expect(clone.keyId).toBe(key.keyId);
  expect(clone.key).toBeInstanceOf(Uint8Array);
  expect([...clone.key]).toEqual([...key.key]);
  expect(clone.key).not.toBe(key.key);
  expect(Object.getPrototypeOf(clone)).toBe(Object.prototype);
}

describe("secret-storage keys the client returns", () => {
  it("a key from secretStorage.createKey() prints neither its bytes nor its recovery key", async () => {
    const { client } = await newUser(createMockHomeserver(), "ada");

    const created = await client.secretStorage.createKey();

    expect(created.recoveryKey).toMatch(/^(\w{4} )+\w{1,4}$/);
    const recoveryForms = [created.recoveryKey, created.recoveryKey.replace(/\s+/g, "")];
    expectKeyPrintsOnlyItsId(created, "CreatedSecretStorageKey", recoveryForms);
    // The recovery key and the description are still there for the code that shows them.
    const clone = structuredClone(created);
    expect(clone).toMatchObject({ keyId: created.keyId, recoveryKey: created.recoveryKey });
    expect(clone.description).toEqual(created.description);
  });

  it("the key crossSigning.bootstrap({ createSecretStorageKey: true }) returns prints only its id", async () => {
    const { client } = await newUser(createMockHomeserver(), "bea");

    const result = await client.crossSigning.bootstrap({ createSecretStorageKey: true });

    const key = result.secretStorageKey!;
    expectKeyPrintsOnlyItsId(key, "SecretStorageKey", [result.recoveryKey!.replace(/\s+/g, "")]);
    // The whole result, printed by an app, shows the key's id and never its bytes.
    const whole = printed(result);
    for (const text of Object.values(whole)) expectNoBytes(text, key.key);
    for (const form of ["inspect", "deepInspect", "consoleLog", "json", "jsonNested"] as const) {
      expect(whole[form]).toContain(key.keyId);
    }
  });

  it("the key crossSigning.restoreFromRecoveryKey returns, and the one unlockWithRecoveryKey returns, print only their id", async () => {
    const server = createMockHomeserver();
    const { account, client: first } = await newUser(server, "cleo");
    const { recoveryKey } = await first.crossSigning.bootstrap({ createSecretStorageKey: true });
    const laptop = await secondLogin(server, account.userId);

    const restored = await laptop.crossSigning.restoreFromRecoveryKey(recoveryKey!);
    const unlocked = await laptop.secretStorage.unlockWithRecoveryKey(recoveryKey!);

    expect(restored.restored.sort()).toEqual(["master", "selfSigning", "userSigning"]);
    const compactRecoveryKey = recoveryKey!.replace(/\s+/g, "");
    expectKeyPrintsOnlyItsId(restored.secretStorageKey, "SecretStorageKey", [
      recoveryKey!,
      compactRecoveryKey,
    ]);
    expectKeyPrintsOnlyItsId(unlocked, "SecretStorageKey", [recoveryKey!, compactRecoveryKey]);
    expect([...unlocked.key]).toEqual([...restored.secretStorageKey.key]);
    for (const text of Object.values(printed(restored))) {
      expectNoBytes(text, restored.secretStorageKey.key);
      expect(text.includes(compactRecoveryKey)).toBe(false);
    }
  });
});
