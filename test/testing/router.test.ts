import { describe, expect, it } from "vitest";
import { compilePattern } from "../../src/testing/route-pattern.js";
import { Router } from "../../src/testing/router.js";

describe("compilePattern", () => {
  it("matches literal segments and decodes {param} segments", () => {
    const p = compilePattern("/_matrix/client/v3/devices/{deviceId}");
    expect(p.match("/_matrix/client/v3/devices/ABC%2Fdef%2B")).toEqual({ deviceId: "ABC/def+" });
    expect(p.match("/_matrix/client/v3/devices")).toBeUndefined();
    expect(p.match("/_matrix/client/v3/devices/a/b")).toBeUndefined();
    expect(p.match("/_matrix/client/v3/devices/")).toBeUndefined();
  });

  it("refuses a segment that is not valid percent-encoding", () => {
    expect(compilePattern("/x/{id}").match("/x/%E0%A4%A")).toBeUndefined();
  });

  it("matches any remainder, even none, with a trailing *", () => {
    const p = compilePattern("/_matrix/client/v3/user/*");
    expect(p.match("/_matrix/client/v3/user/@a:b/account_data/x")).toEqual({});
    expect(p.match("/_matrix/client/v3/user")).toEqual({});
    expect(p.match("/_matrix/client/v3")).toBeUndefined();
    expect(p.match("/_matrix/client/v3/other/x")).toBeUndefined();
  });
});

describe("Router", () => {
  const route = (method: "GET" | "PUT" | "POST" | "DELETE", pattern: string) => ({
    method,
    pattern,
    id: `${method} ${pattern}`,
  });
  const router = new Router([
    route("GET", "/_matrix/client/v3/devices/{deviceId}"),
    route("PUT", "/_matrix/client/v3/devices/{deviceId}"),
    route("GET", "/_matrix/client/versions"),
  ]);

  it("resolves method + path to the route with its params", () => {
    const r = router.resolve("PUT", "/_matrix/client/v3/devices/D1");
    expect(r).toMatchObject({
      kind: "match",
      route: { id: "PUT /_matrix/client/v3/devices/{deviceId}" },
      params: { deviceId: "D1" },
    });
  });

  it("tells a wrong method from an unknown path", () => {
    expect(router.resolve("POST", "/_matrix/client/v3/devices/D1")).toEqual({
      kind: "wrong-method",
      allowed: ["GET", "PUT"],
    });
    expect(router.resolve("GET", "/_matrix/client/v3/nothing")).toEqual({ kind: "not-found" });
  });

  it("serves v3 routes under r0 too", () => {
    expect(router.resolve("GET", "/_matrix/client/r0/devices/D1")).toMatchObject({
      kind: "match",
      params: { deviceId: "D1" },
    });
  });

  it("refuses a duplicate method + pattern", () => {
    expect(() => new Router([route("GET", "/a"), route("GET", "/a")])).toThrow(/duplicate/);
  });
});
