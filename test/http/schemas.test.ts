import { describe, expect, it } from "vitest";
import type { z } from "zod";
import {
  isMalformedResponseError,
  type MalformedResponseError,
} from "../../src/errors/malformed-response-error.js";
import { accountDataResponseSchema } from "../../src/http/schemas/account-data.js";
import { loginResponseSchema, registerResponseSchema } from "../../src/http/schemas/auth.js";
import { emptyResponseSchema } from "../../src/http/schemas/empty.js";
import { matrixErrorBodySchema, uiaResponseSchema } from "../../src/http/schemas/error.js";
import {
  deviceKeysSchema,
  keysClaimResponseSchema,
  keysQueryResponseSchema,
  keysUploadResponseSchema,
} from "../../src/http/schemas/keys.js";
import { versionsResponseSchema } from "../../src/http/schemas/versions.js";
import { whoamiResponseSchema } from "../../src/http/schemas/whoami.js";
import { json } from "./scripted-fetch.js";
import { rejection, setup } from "./support.js";

const SECRET = "c2VjcmV0LWtleS1tYXRlcmlhbA";

const accepted: [string, z.ZodType, unknown][] = [
  ["versions", versionsResponseSchema, { versions: ["v1.1"], unstable_features: { a: true }, extra: 1 }],
  ["whoami", whoamiResponseSchema, { user_id: "@a:hs", device_id: "D", is_guest: false, extra: 1 }],
  ["login", loginResponseSchema, { user_id: "@a:hs", access_token: "t", device_id: "D", well_known: {} }],
  ["register with inhibit_login", registerResponseSchema, { user_id: "@a:hs" }],
  ["keys/upload", keysUploadResponseSchema, { one_time_key_counts: { signed_curve25519: 50 } }],
  [
    "keys/query",
    keysQueryResponseSchema,
    {
      device_keys: {
        "@b:hs": { DEV: { user_id: "@b:hs", device_id: "DEV", algorithms: [], keys: {}, extra: 1 } },
      },
      failures: { "other.hs": { status: 503 } },
      master_keys: { "@b:hs": { user_id: "@b:hs", usage: ["master"], keys: {} } },
    },
  ],
  [
    "keys/claim",
    keysClaimResponseSchema,
    {
      one_time_keys: { "@b:hs": { DEV: { "signed_curve25519:AAAA": { key: "k", signatures: {} } } } },
      failures: {},
    },
  ],
  ["sendToDevice", emptyResponseSchema, { "org.example.unknown": true }],
  ["account data", accountDataResponseSchema, { key: "K1", anything: [1, 2] }],
  ["an error body", matrixErrorBodySchema, { errcode: "M_FORBIDDEN", error: 5, retry_after_ms: "soon" }],
  ["a UIA challenge", uiaResponseSchema, { flows: [{ stages: ["m.login.dummy"] }], session: "s" }],
];

const rejected: [string, z.ZodType, unknown, string[]][] = [
  ["versions without versions", versionsResponseSchema, { unstable_features: {} }, ["versions"]],
  ["whoami with a numeric user_id", whoamiResponseSchema, { user_id: 42 }, ["user_id"]],
  ["login without a token", loginResponseSchema, { user_id: "@a:hs", device_id: "D" }, ["access_token"]],
  [
    "keys/upload with a string count",
    keysUploadResponseSchema,
    { one_time_key_counts: { c: "50" } },
    ["one_time_key_counts.c"],
  ],
  [
    "keys/upload with a negative count",
    keysUploadResponseSchema,
    { one_time_key_counts: { c: -1 } },
    ["one_time_key_counts.c"],
  ],
  ["keys/claim without one_time_keys", keysClaimResponseSchema, { failures: {} }, ["one_time_keys"]],
  [
    "keys/query with a device that is not an object",
    keysQueryResponseSchema,
    { device_keys: { "@b:hs": { DEV: 3 } } },
    ["device_keys.@b:hs.DEV"],
  ],
  [
    "a device with non-string keys",
    deviceKeysSchema,
    { user_id: "u", device_id: "d", algorithms: [], keys: { k: 1 } },
    ["keys.k"],
  ],
  ["an error body without errcode", matrixErrorBodySchema, { error: "x" }, ["errcode"]],
  ["account data that is an array", accountDataResponseSchema, [1], ["(body)"]],
];

describe("response schemas", () => {
  it.each(accepted)("accept a real-world %s response, extra fields and all", (_name, schema, body) => {
    expect(schema.safeParse(body).success).toBe(true);
  });

  it("keep fields they do not name, so the crypto library gets the whole body back", () => {
    const body = { device_keys: {}, "org.example.future": { x: 1 } };
    expect(keysQueryResponseSchema.parse(body)).toEqual(body);
  });

  it("count an unstable feature only when it is exactly true", () => {
    expect(
      versionsResponseSchema.parse({
        versions: [],
        unstable_features: { a: true, b: "true", c: 1, d: false },
      }),
    ).toEqual({ versions: [], unstableFeatures: { a: true, b: false, c: false, d: false } });
  });

  it.each(rejected)(
    "turn %s into a MalformedResponseError naming the field, not the value",
    async (_name, schema, body, paths) => {
      const { http, server } = setup();
      // Plant a recognisable value in the body so any leak of values would show.
      const planted = Array.isArray(body) ? body : { ...(body as object), leak_probe: SECRET };
      server.push(json(200, planted));
      const error = (await rejection(
        http.request({ method: "GET", path: "/_matrix/client/v3/x", schema }),
      )) as MalformedResponseError;
      expect(isMalformedResponseError(error)).toBe(true);
      expect(error.method).toBe("GET");
      expect(error.path).toBe("/_matrix/client/v3/x");
      expect(error.issues.map((i) => i.path)).toEqual(paths);
      expect(error.message).toContain("GET /_matrix/client/v3/x");
      for (const p of paths) expect(error.message).toContain(p);
      expect(
        JSON.stringify({ message: error.message, details: error.details, issues: error.issues }),
      ).not.toMatch(new RegExp(`${SECRET}|"50"|\\b42\\b`));
    },
  );

  it("say which type was expected without quoting what arrived", async () => {
    const { http, server } = setup();
    server.push(json(200, { user_id: 1234567 }));
    const error = (await rejection(
      http.request({ method: "GET", path: "/w", schema: whoamiResponseSchema }),
    )) as MalformedResponseError;
    expect(error.issues).toEqual([{ path: "user_id", code: "invalid_type", expected: "string" }]);
    expect(error.message).not.toContain("1234567");
  });
});
