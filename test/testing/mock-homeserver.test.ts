import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ClientRoute, createMockHomeserver, MatrixError } from "../../src/testing/index.js";
import { call, type Harness, register, startHarness, transports } from "./support/transports.js";

const explodingRoute: ClientRoute = {
  method: "POST",
  pattern: "/_matrix/client/v3/explode",
  handler: (ctx) => {
    ctx.caller();
    throw new Error("boom with a secret that must not leak");
  },
};

describe.each(transports)("the mock homeserver's request handling (%s)", (transport) => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness(transport, {
      extraRoutes: [explodingRoute],
      overrides: { maxRequestBodyBytes: 1024 },
    });
  });
  afterEach(async () => {
    await h.close();
  });

  it("answers an unknown path with 404 M_UNRECOGNIZED", async () => {
    const res = await call(h, "GET", "/_matrix/client/v3/nonsense");
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ errcode: "M_UNRECOGNIZED", error: "Unrecognized request" });
  });

  it("answers a known path with the wrong method with 405 M_UNRECOGNIZED", async () => {
    const res = await call(h, "DELETE", "/_matrix/client/v3/account/whoami");
    expect(res.status).toBe(405);
    expect(res.body.errcode).toBe("M_UNRECOGNIZED");
  });

  it("answers a body that is not JSON with 400 M_NOT_JSON, after authenticating", async () => {
    const alice = await register(h, "alice");
    const unauth = await call(h, "POST", "/_matrix/client/v3/keys/query", { body: "{nope" });
    expect(unauth.status).toBe(401);
    const res = await call(h, "POST", "/_matrix/client/v3/keys/query", { token: alice.token, body: "{nope" });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ errcode: "M_NOT_JSON", error: "Content not JSON." });
  });

  it("answers a body over the size limit with 413 M_TOO_LARGE", async () => {
    const alice = await register(h, "alice");
    const res = await call(h, "PUT", `/_matrix/client/v3/user/${alice.userId}/account_data/big`, {
      token: alice.token,
      body: { blob: "x".repeat(2000) },
    });
    expect(res.status).toBe(413);
    expect(res.body.errcode).toBe("M_TOO_LARGE");
    expect(h.homeserver.state.accountData.get(alice.userId, "big")).toBeUndefined();
  });

  it("turns an unexpected handler exception into 500 M_UNKNOWN and keeps serving", async () => {
    const alice = await register(h, "alice");
    const res = await call(h, "POST", "/_matrix/client/v3/explode", { token: alice.token, body: {} });
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ errcode: "M_UNKNOWN", error: "Internal server error" });
    const log = h.homeserver.control.requestLog().at(-1);
    expect(log?.internalError).toContain("boom");
    const who = await call(h, "GET", "/_matrix/client/v3/account/whoami", { token: alice.token });
    expect(who.status).toBe(200);
  });

  it("answers CORS preflights on any path permissively, as Synapse does", async () => {
    for (const path of ["/_matrix/client/v3/keys/upload", "/_matrix/client/v3/nonsense", "/_mock/faults"]) {
      const res = await h.fetch(`${h.url}${path}`, {
        method: "OPTIONS",
        headers: {
          Origin: "http://app.example",
          "Access-Control-Request-Method": "POST",
          "Access-Control-Request-Headers": "authorization, content-type",
        },
      });
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
      expect(res.headers.get("access-control-allow-methods")).toBe("GET, HEAD, POST, PUT, DELETE, OPTIONS");
      expect(res.headers.get("access-control-allow-headers")).toBe(
        "X-Requested-With, Content-Type, Authorization, Date",
      );
      expect(await res.text()).toBe("");
    }
  });

  it("puts CORS headers on ordinary and error responses", async () => {
    const ok = await call(h, "GET", "/_matrix/client/versions");
    const err = await call(h, "GET", "/_matrix/client/v3/nonsense");
    for (const res of [ok, err]) expect(res.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("treats HEAD as GET without a body", async () => {
    const res = await h.fetch(`${h.url}/_matrix/client/versions`, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
  });

  it("never writes an access token into the request log", async () => {
    const alice = await register(h, "alice");
    await call(h, "GET", `/_matrix/client/v3/account/whoami?access_token=${alice.token}&x=1`);
    const entry = h.homeserver.control.requestLog().at(-1)!;
    expect(entry).toMatchObject({
      path: "/_matrix/client/v3/account/whoami",
      query: "x=1",
      userId: alice.userId,
    });
    expect(JSON.stringify(h.homeserver.control.requestLog())).not.toContain(alice.token);
  });
});

describe("the in-process fetch", () => {
  it("accepts relative URLs, URL objects and Request objects", async () => {
    const hs = createMockHomeserver();
    expect((await hs.fetch("/_matrix/client/versions")).status).toBe(200);
    expect((await hs.fetch(new URL("http://anything.example/_matrix/client/versions"))).status).toBe(200);
    expect((await hs.fetch(new Request("http://x.example/_matrix/client/versions"))).status).toBe(200);
  });

  it("rejects with the abort reason when the signal is already aborted", async () => {
    const hs = createMockHomeserver();
    const ac = new AbortController();
    ac.abort(new DOMException("stop", "AbortError"));
    await expect(hs.fetch("/_matrix/client/versions", { signal: ac.signal })).rejects.toMatchObject({
      name: "AbortError",
    });
  });

  it("lets a route throw MatrixError with extra fields and headers", async () => {
    const hs = createMockHomeserver({
      extraRoutes: [
        {
          method: "GET",
          pattern: "/_matrix/client/v3/teapot",
          unauthenticated: true,
          handler: () => {
            throw new MatrixError(
              418,
              "M_TEAPOT",
              "short and stout",
              { spout: true },
              { "X-Tea": "earl grey" },
            );
          },
        },
      ],
    });
    const res = await hs.fetch("/_matrix/client/v3/teapot");
    expect(res.status).toBe(418);
    expect(res.headers.get("x-tea")).toBe("earl grey");
    expect(await res.json()).toEqual({ errcode: "M_TEAPOT", error: "short and stout", spout: true });
  });
});
