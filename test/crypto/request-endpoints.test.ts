import {
  initAsync,
  KeysBackupRequest,
  KeysClaimRequest,
  KeysQueryRequest,
  KeysUploadRequest,
  type RequestType,
  RoomMessageRequest,
  SignatureUploadRequest,
  ToDeviceRequest,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { httpCallFor, type OutgoingRequest } from "../../src/crypto/request-endpoints.js";
import { isSdkError } from "../../src/errors/sdk-error.js";
import { emptyResponseSchema as sendToDeviceResponseSchema } from "../../src/http/schemas/empty.js";
import {
  keysBackupResponseSchema,
  keysClaimResponseSchema,
  keysQueryResponseSchema,
  keysUploadResponseSchema,
  signaturesUploadResponseSchema,
} from "../../src/http/schemas/keys.js";
import { roomSendResponseSchema } from "../../src/http/schemas/rooms.js";

beforeAll(async () => {
  await initAsync();
});

const V3 = "/_matrix/client/v3";

describe("httpCallFor", () => {
  const cases: {
    name: string;
    make: () => OutgoingRequest;
    method: string;
    path: string;
    query?: Record<string, string>;
    body: unknown;
    retry: "safe" | "never";
  }[] = [
    {
      name: "keys upload goes to POST keys/upload and may be retried",
      make: () => new KeysUploadRequest("r1", JSON.stringify({ device_keys: { device_id: "D" } })),
      method: "POST",
      path: `${V3}/keys/upload`,
      body: { device_keys: { device_id: "D" } },
      retry: "safe",
    },
    {
      name: "keys query goes to POST keys/query and may be retried",
      make: () => new KeysQueryRequest("r2", JSON.stringify({ device_keys: { "@a:x": [] } })),
      method: "POST",
      path: `${V3}/keys/query`,
      body: { device_keys: { "@a:x": [] } },
      retry: "safe",
    },
    {
      name: "keys claim goes to POST keys/claim and is never retried",
      make: () =>
        new KeysClaimRequest("r3", JSON.stringify({ one_time_keys: { "@a:x": { D: "signed_curve25519" } } })),
      method: "POST",
      path: `${V3}/keys/claim`,
      body: { one_time_keys: { "@a:x": { D: "signed_curve25519" } } },
      retry: "never",
    },
    {
      name: "a to-device message goes to PUT sendToDevice with its txn id, encoded, and may be retried",
      make: () => new ToDeviceRequest("t/1+", "m.room.encrypted", "t/1+", JSON.stringify({ messages: {} })),
      method: "PUT",
      path: `${V3}/sendToDevice/m.room.encrypted/t%2F1%2B`,
      body: { messages: {} },
      retry: "safe",
    },
    {
      name: "a signature upload goes to POST keys/signatures/upload and may be retried",
      make: () => new SignatureUploadRequest("r5", JSON.stringify({ "@a:x": { D: { signatures: {} } } })),
      method: "POST",
      path: `${V3}/keys/signatures/upload`,
      body: { "@a:x": { D: { signatures: {} } } },
      retry: "safe",
    },
    {
      name: "a room message goes to PUT rooms/{roomId}/send/{type}/{txnId}, encoded, and may be retried",
      make: () =>
        new RoomMessageRequest(
          "r6",
          "!room:x",
          "txn 6",
          "m.key.verification.ready",
          JSON.stringify({ a: 1 }),
        ),
      method: "PUT",
      path: `${V3}/rooms/!room%3Ax/send/m.key.verification.ready/txn%206`,
      body: { a: 1 },
      retry: "safe",
    },
    {
      name: "a key backup goes to PUT room_keys/keys with the version and may be retried",
      make: () => new KeysBackupRequest("r7", JSON.stringify({ rooms: {} }), "3"),
      method: "PUT",
      path: `${V3}/room_keys/keys`,
      query: { version: "3" },
      body: { rooms: {} },
      retry: "safe",
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const call = httpCallFor(c.make());
      expect(call.method).toBe(c.method);
      expect(call.path).toBe(c.path);
      expect(call.query).toEqual(c.query);
      expect(call.body).toEqual(c.body);
      expect(call.retry).toBe(c.retry);
    });
  }

  it("rejects a request type it does not know with a typed error", () => {
    const fake = { type: 42 as RequestType, id: "x", body: "{}" } as unknown as OutgoingRequest;
    expect(() => httpCallFor(fake)).toThrowError(
      expect.objectContaining({ code: "unknown_outgoing_request" }),
    );
  });

  it("rejects a request body that is not JSON without quoting it", () => {
    const secret = "{not json but a s3cr3t key";
    let thrown: unknown;
    try {
      httpCallFor(new KeysUploadRequest("r", secret));
    } catch (err) {
      thrown = err;
    }
    expect(isSdkError(thrown) && thrown.code).toBe("malformed_outgoing_request");
    expect(
      JSON.stringify({ m: (thrown as Error).message, c: (thrown as Error).cause ?? null }),
    ).not.toContain("s3cr3t");
  });

  it("gives each request the schema of its endpoint's response", () => {
    expect(httpCallFor(new KeysUploadRequest("a", "{}")).schema).toBe(keysUploadResponseSchema);
    expect(httpCallFor(new KeysQueryRequest("a", "{}")).schema).toBe(keysQueryResponseSchema);
    expect(httpCallFor(new KeysClaimRequest("a", "{}")).schema).toBe(keysClaimResponseSchema);
    expect(httpCallFor(new ToDeviceRequest("a", "t", "a", "{}")).schema).toBe(sendToDeviceResponseSchema);
    expect(httpCallFor(new SignatureUploadRequest("a", "{}")).schema).toBe(signaturesUploadResponseSchema);
    expect(httpCallFor(new RoomMessageRequest("a", "!r:x", "t", "e", "{}")).schema).toBe(
      roomSendResponseSchema,
    );
    expect(httpCallFor(new KeysBackupRequest("a", "{}", "1")).schema).toBe(keysBackupResponseSchema);
  });
});

describe("response schemas", () => {
  const rejected: [string, { safeParse(v: unknown): { success: boolean } }, unknown][] = [
    ["keys/upload without one_time_key_counts", keysUploadResponseSchema, {}],
    [
      "keys/upload with a negative count",
      keysUploadResponseSchema,
      { one_time_key_counts: { signed_curve25519: -1 } },
    ],
    ["keys/upload that is an array", keysUploadResponseSchema, []],
    ["keys/query whose device_keys is a string", keysQueryResponseSchema, { device_keys: "x" }],
    [
      "keys/query with a device that is not an object",
      keysQueryResponseSchema,
      { device_keys: { "@a:x": { D: 1 } } },
    ],
    ["keys/query that is null", keysQueryResponseSchema, null],
    ["keys/claim without one_time_keys", keysClaimResponseSchema, { failures: {} }],
    ["sendToDevice that is a string", sendToDeviceResponseSchema, "ok"],
    ["room send without event_id", roomSendResponseSchema, {}],
    ["key backup without etag", keysBackupResponseSchema, { count: 1 }],
    ["signatures upload whose failures is a list", signaturesUploadResponseSchema, { failures: [] }],
  ];
  for (const [name, schema, body] of rejected) {
    it(`rejects ${name}`, () => {
      expect(schema.safeParse(body).success).toBe(false);
    });
  }

  it("passes unknown fields through untouched so crypto-wasm sees the whole response", () => {
    const body = { device_keys: {}, failures: {}, "org.example.extra": { nested: [1, 2] } };
    expect(keysQueryResponseSchema.parse(body)).toEqual(body);
  });

  it("accepts a keys/query response with no fields at all, as the spec makes them all optional", () => {
    expect(keysQueryResponseSchema.safeParse({}).success).toBe(true);
  });
});
