import { describe, expect, it } from "vitest";
import { z } from "zod";
import { isMalformedResponseError } from "../../src/errors/malformed-response-error.js";
import { isMatrixApiError, type MatrixApiError } from "../../src/errors/matrix-api-error.js";
import { isNetworkError, type NetworkError } from "../../src/errors/network-error.js";
import { whoamiResponseSchema } from "../../src/http/schemas/whoami.js";
import { droppedMidBody, fetchFailed, json, text } from "./scripted-fetch.js";
import { observe, rejection, setup } from "./support.js";

const whoami = {
  method: "GET",
  path: "/_matrix/client/v3/account/whoami",
  schema: whoamiResponseSchema,
} as const;
const ok = () => json(200, { user_id: "@alice:hs.example", device_id: "ABC" });

describe("error mapping", () => {
  it("parses and validates a 2xx body, keeping fields the schema does not name", async () => {
    const { http, server } = setup();
    server.push(json(200, { user_id: "@alice:hs.example", device_id: "ABC", "org.example.extra": 1 }));
    await expect(http.request(whoami)).resolves.toEqual({
      user_id: "@alice:hs.example",
      device_id: "ABC",
      "org.example.extra": 1,
    });
  });

  it("makes a 4xx with an errcode a permanent MatrixApiError that is not retried, even for a GET", async () => {
    const { http, server } = setup();
    server.push(json(404, { errcode: "M_NOT_FOUND", error: "No such thing" }), ok());
    const error = (await rejection(http.request(whoami))) as MatrixApiError;
    expect(isMatrixApiError(error)).toBe(true);
    expect(error).toMatchObject({
      status: 404,
      errcode: "M_NOT_FOUND",
      error: "No such thing",
      kind: "permanent",
      method: "GET",
      path: "/_matrix/client/v3/account/whoami",
      retryAfterMs: undefined,
    });
    expect(server.calls).toHaveLength(1);
  });

  it("treats a 429 as rate-limited and waits retry_after_ms from the body on the injected clock", async () => {
    const { http, server, clock } = setup();
    server.push(json(429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 2_000 }), ok());
    const req = observe(http.request(whoami));
    await clock.advance(1_999);
    expect(server.calls).toHaveLength(1);
    await clock.advance(1);
    expect((await req.result).done && server.calls).toHaveLength(2);
    expect(req.state).toMatchObject({ ok: true });
  });

  it("honours a Retry-After header in seconds on a 429 without a Matrix body", async () => {
    const { http, server, clock } = setup();
    server.push(new Response("slow down", { status: 429, headers: { "retry-after": "3" } }), ok());
    const req = observe(http.request(whoami));
    await clock.advance(2_999);
    expect(server.calls).toHaveLength(1);
    await clock.advance(1);
    await req.result;
    expect(req.state).toMatchObject({ ok: true });
    expect(server.calls.map((c) => c.atMs - server.calls[0]!.atMs)).toEqual([0, 3_000]);
  });

  it("honours a Retry-After HTTP date, measured against the injected clock", async () => {
    const { http, server, clock } = setup();
    const at = new Date(clock.now() + 5_000).toUTCString();
    server.push(json(429, { errcode: "M_LIMIT_EXCEEDED" }, { "retry-after": at }), ok());
    const req = observe(http.request(whoami));
    await clock.advance(4_999);
    expect(server.calls).toHaveLength(1);
    await clock.advance(1);
    await req.result;
    expect(server.calls.map((c) => c.atMs - server.calls[0]!.atMs)).toEqual([0, 5_000]);
  });

  it("treats M_LIMIT_EXCEEDED under a status other than 429 as rate-limited too", async () => {
    const { http, server, clock } = setup();
    server.push(json(400, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 700 }), ok());
    const req = observe(http.request(whoami));
    await clock.advance(700);
    await req.result;
    expect(req.state).toMatchObject({ ok: true });
    expect(server.calls.map((c) => c.atMs - server.calls[0]!.atMs)).toEqual([0, 700]);
  });

  it("treats a 5xx as transient and retries it with backoff", async () => {
    const { http, server, clock } = setup();
    server.push(json(502, { errcode: "M_UNKNOWN", error: "upstream" }), ok());
    const req = observe(http.request(whoami));
    await clock.advance(250);
    await req.result;
    expect(req.state).toMatchObject({ ok: true });
    // random 0.5 × base 500 ms on the first retry.
    expect(server.calls.map((c) => c.atMs - server.calls[0]!.atMs)).toEqual([0, 250]);
  });

  it("treats a 4xx without an errcode (a proxy's page) as transient", async () => {
    const { http, server, clock } = setup({ retry: { maxAttempts: 2 } });
    server.push(text(404, "<html>nginx</html>"), text(404, "<html>nginx</html>"));
    const req = observe(http.request(whoami));
    await clock.advance(250);
    const settled = await req.result;
    expect(server.calls).toHaveLength(2);
    const error = settled.done && !settled.ok ? (settled.error as MatrixApiError) : undefined;
    expect(error).toMatchObject({ status: 404, errcode: undefined, kind: "transient", data: undefined });
  });

  it.each([405, 501])(
    "makes a bare %i (method or endpoint not served) permanent, not retried",
    async (status) => {
      const { http, server } = setup();
      server.push(text(status, "Method Not Allowed"), ok());
      const error = (await rejection(http.request(whoami))) as MatrixApiError;
      expect(error).toMatchObject({ status, errcode: undefined, kind: "permanent" });
      expect(server.calls).toHaveLength(1);
    },
  );

  it("makes a 401 UIA challenge permanent and hands its flows and session to the caller", async () => {
    const { http, server } = setup();
    const challenge = { flows: [{ stages: ["m.login.password"] }], session: "sess1", params: {} };
    server.push(json(401, challenge));
    const error = (await rejection(
      http.request({
        method: "POST",
        path: "/_matrix/client/v3/keys/device_signing/upload",
        body: {},
        schema: z.looseObject({}),
        retry: "safe",
      }),
    )) as MatrixApiError;
    expect(error).toMatchObject({ status: 401, errcode: undefined, kind: "permanent", data: challenge });
    expect(server.calls).toHaveLength(1);
  });

  it("takes a 401 for a UIA challenge only when its flows are lists of stages, as the UIA loop does", async () => {
    const { http, server, clock } = setup();
    // Not a challenge the UIA loop could answer: an errcode-less 4xx, i.e. a proxy's, retried.
    server.push(json(401, { flows: [{ stages: "m.login.password" }] }), ok());
    const req = observe(http.request(whoami));
    await clock.advance(250);
    await req.result;
    expect(req.state).toMatchObject({ ok: true });
    expect(server.calls).toHaveLength(2);
  });

  it("makes a network failure a transient NetworkError carrying fetch's own error, not ky's", async () => {
    const { http, server, clock } = setup({ retry: { maxAttempts: 2 } });
    server.push(fetchFailed(), fetchFailed());
    const req = observe(http.request(whoami));
    await clock.advance(250);
    const settled = await req.result;
    const error = settled.done && !settled.ok ? (settled.error as NetworkError) : undefined;
    expect(isNetworkError(error)).toBe(true);
    expect(error?.cause).toBeInstanceOf(TypeError);
    expect((error?.cause as Error | undefined)?.message).toBe("fetch failed");
    expect(server.calls).toHaveLength(2);
  });

  it("makes a connection dropped mid-body a NetworkError", async () => {
    const { http, server, clock } = setup();
    server.push(droppedMidBody(), ok());
    const req = observe(http.request(whoami));
    await clock.advance(250);
    await req.result;
    expect(req.state).toMatchObject({ ok: true });
    expect(server.calls).toHaveLength(2);

    server.push(droppedMidBody());
    const claim = await rejection(
      http.request({ method: "POST", path: "/_matrix/client/v3/keys/claim", body: {}, schema: z.unknown() }),
    );
    expect(isNetworkError(claim)).toBe(true);
  });

  it.each([
    ["an HTML page", text(200, "<html>captive portal</html>")],
    ["an empty body", new Response("", { status: 200 })],
  ])("makes a 2xx with %s a MalformedResponseError that is not retried", async (_name, response) => {
    const { http, server } = setup();
    server.push(response, ok());
    const error = await rejection(http.request(whoami));
    expect(isMalformedResponseError(error)).toBe(true);
    expect(error).toMatchObject({
      method: "GET",
      path: whoami.path,
      issues: [{ path: "(body)", code: "not_json" }],
    });
    expect(server.calls).toHaveLength(1);
  });

  it("makes any other status (an unfollowed 3xx) permanent", async () => {
    const { http, server } = setup();
    server.push(new Response(null, { status: 304 }), ok());
    const error = await rejection(http.request(whoami));
    expect(error).toMatchObject({ name: "MatrixApiError", status: 304, kind: "permanent" });
    expect(server.calls).toHaveLength(1);
  });
});
