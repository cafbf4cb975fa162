import { describe, expect, it } from "vitest";
import { loggedBody, presentedTokens, redactSecrets } from "../../src/testing/log-redaction.js";

/** The marker docs/mock-homeserver.md promises in place of a secret. */
const REDACTED = "<redacted>";
const TOKEN = "syt_YWxpY2U_secretsecret_0a1b2c";
const bytes = (text: string) => new TextEncoder().encode(text);

describe("redactSecrets", () => {
  it("replaces every secret field at any depth and leaves the rest as sent", () => {
    const body = {
      type: "m.login.password",
      identifier: { type: "m.id.user", user: "alice" },
      password: "hunter2",
      new_password: "hunter3",
      refresh_token: "r-token",
      nested: [{ access_token: "a-token", token: "t", keep: 1 }],
      messages: {
        "@bob:localhost": {
          DEV: {
            algorithm: "m.olm.v1.curve25519-aes-sha2",
            sender_key: "curve",
            ciphertext: { curve: { type: 0, body: "olm-body" } },
          },
        },
      },
      content: { session_key: "megolm", private_key: "pk", secret: "s" },
      account_data: { encrypted: { key: { iv: "iv", ciphertext: "c", mac: "m" } } },
      backup: { session_data: { ephemeral: "e", ciphertext: "c", mac: "m" } },
    };

    expect(redactSecrets(body)).toEqual({
      type: "m.login.password",
      identifier: { type: "m.id.user", user: "alice" },
      password: REDACTED,
      new_password: REDACTED,
      refresh_token: REDACTED,
      nested: [{ access_token: REDACTED, token: REDACTED, keep: 1 }],
      messages: {
        "@bob:localhost": {
          DEV: { algorithm: "m.olm.v1.curve25519-aes-sha2", sender_key: "curve", ciphertext: REDACTED },
        },
      },
      content: { session_key: REDACTED, private_key: REDACTED, secret: REDACTED },
      account_data: { encrypted: REDACTED },
      backup: { session_data: { ephemeral: "e", ciphertext: REDACTED, mac: REDACTED } },
    });
    const logged = JSON.stringify(redactSecrets(body));
    for (const secret of ["hunter2", "hunter3", "r-token", "a-token", "olm-body", "megolm", '"pk"', '"iv"']) {
      expect(logged).not.toContain(secret);
    }
  });

  it("hides everything under auth, and device_data except its algorithm", () => {
    const body = {
      auth: { type: "m.login.password", password: "p", session: "s" },
      device_id: "DEHYDRATED",
      device_data: { algorithm: "org.matrix.msc3814.v2", device_pickle: "pickle", nonce: "n" },
    };
    expect(redactSecrets(body)).toEqual({
      auth: REDACTED,
      device_id: "DEHYDRATED",
      device_data: { algorithm: "org.matrix.msc3814.v2", device_pickle: REDACTED, nonce: REDACTED },
    });
    expect(redactSecrets({ device_data: "not an object" })).toEqual({ device_data: REDACTED });
  });

  it("keeps true, false and null, which hide nothing", () => {
    expect(redactSecrets({ refresh_token: true, password: null, auth: false })).toEqual({
      refresh_token: true,
      password: null,
      auth: false,
    });
  });

  it("cuts the given tokens out of every string and key, but not short ones", () => {
    const body = { note: `Bearer ${TOKEN}!`, [TOKEN]: 1, list: [TOKEN], short: "abc" };
    const redacted = redactSecrets(body, [TOKEN, "abc"]);
    expect(redacted).toEqual({ note: `Bearer ${REDACTED}!`, [REDACTED]: 1, list: [REDACTED], short: "abc" });
    expect(JSON.stringify(redacted)).not.toContain(TOKEN);
  });

  it("returns a copy and keeps a __proto__ key a plain key", () => {
    const body = JSON.parse('{"password": "p", "__proto__": {"polluted": true}}') as Record<string, unknown>;
    const redacted = redactSecrets(body) as Record<string, unknown>;
    expect(body.password).toBe("p");
    expect(Object.hasOwn(redacted, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(redacted)).toBe(Object.prototype);
  });
});

describe("loggedBody", () => {
  it("parses JSON bodies and redacts them", () => {
    expect(loggedBody("POST", bytes('{"next_batch":"d5","password":"x"}'), [])).toEqual({
      next_batch: "d5",
      password: REDACTED,
    });
  });

  it("keeps text that is not JSON, without tokens, shortened when long", () => {
    expect(loggedBody("PUT", bytes(`{nope ${TOKEN}`), [TOKEN])).toBe(`{nope ${REDACTED}`);
    const long = loggedBody("POST", bytes("x".repeat(5000)), []) as string;
    expect(long).toBe(`${"x".repeat(1024)}… (5000 bytes)`);
  });

  it("describes bytes that are not UTF-8 instead of copying them", () => {
    expect(loggedBody("POST", new Uint8Array([0xff, 0xfe, 0x00]), [])).toBe("<3 bytes, not UTF-8>");
  });

  it("records nothing for GET and HEAD or an empty body", () => {
    expect(loggedBody("GET", bytes("{}"), [])).toBeUndefined();
    expect(loggedBody("HEAD", bytes("{}"), [])).toBeUndefined();
    expect(loggedBody("POST", null, [])).toBeUndefined();
    expect(loggedBody("PUT", new Uint8Array(), [])).toBeUndefined();
  });
});

describe("presentedTokens", () => {
  it("reads the Bearer header and the access_token query parameter", () => {
    const headers = new Headers({ Authorization: `Bearer ${TOKEN}` });
    expect(presentedTokens(headers, new URLSearchParams("access_token=q-token&x=1"))).toEqual([
      TOKEN,
      "q-token",
    ]);
    expect(presentedTokens(new Headers(), new URLSearchParams())).toEqual([]);
  });
});
