import { afterEach, describe, expect, it } from "vitest";
import { checkControlToken, controlExposureError, isLoopbackHost } from "../../src/testing/control-auth.js";
import { createMockHomeserver, type RunningMockServer, startMockServer } from "../../src/testing/index.js";

const TOKEN = "control-token-for-tests";

describe("the control API's token over HTTP", () => {
  const running: RunningMockServer[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.close()));
  });
  const start = async (controlToken?: string) => {
    const r = await startMockServer(controlToken === undefined ? {} : { controlToken });
    running.push(r);
    return r;
  };
  const get = async (r: RunningMockServer, path: string, authorization?: string) => {
    const res = await fetch(`${r.url}${path}`, authorization ? { headers: { authorization } } : {});
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };

  it("refuses a call without a token with 401 M_MISSING_TOKEN", async () => {
    const r = await start(TOKEN);
    expect(await get(r, "/_mock/profile")).toEqual({
      status: 401,
      body: { errcode: "M_MISSING_TOKEN", error: "Missing control token" },
    });
    expect((await get(r, "/_mock/profile", `Basic ${TOKEN}`)).body.errcode).toBe("M_MISSING_TOKEN");
  });

  it("refuses a wrong token with 403 M_UNKNOWN_TOKEN, before telling known paths from unknown", async () => {
    const r = await start(TOKEN);
    for (const path of ["/_mock/profile", "/_mock/no_such_thing"]) {
      expect(await get(r, path, `Bearer ${TOKEN}x`)).toEqual({
        status: 403,
        body: { errcode: "M_UNKNOWN_TOKEN", error: "Unknown control token" },
      });
    }
    expect((await get(r, "/_mock/profile", "Bearer contr")).status).toBe(403);
  });

  it("answers a call with the right token", async () => {
    const r = await start(TOKEN);
    const res = await fetch(`${r.url}/_mock/users`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ localpart: "alice" }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { user_id: string }).user_id).toBe("@alice:localhost");
    expect((await get(r, "/_mock/no_such_thing", `Bearer ${TOKEN}`)).body.errcode).toBe("M_UNRECOGNIZED");
  });

  it("leaves client calls, preflights and in-process control calls alone", async () => {
    const r = await start(TOKEN);
    expect((await get(r, "/_matrix/client/versions")).status).toBe(200);
    const preflight = await fetch(`${r.url}/_mock/profile`, { method: "OPTIONS" });
    expect(preflight.status).toBe(204);
    expect(r.homeserver.control.createUser("bob")?.userId).toBe("@bob:localhost");
  });

  it("asks the in-process fetch for the token too: it is the same HTTP surface", async () => {
    const hs = createMockHomeserver({ controlToken: TOKEN });
    expect((await hs.fetch("/_mock/profile")).status).toBe(401);
    const ok = await hs.fetch("/_mock/profile", { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
  });

  it("is open without a token, the default for tests on loopback", async () => {
    const r = await start();
    expect((await get(r, "/_mock/profile")).status).toBe(200);
    expect(r.homeserver.controlToken).toBeUndefined();
  });

  it("refuses to start on a host other than loopback without a token", async () => {
    await expect(startMockServer({ host: "0.0.0.0" })).rejects.toThrow(/not a loopback address/);
    // A token on the options does not cover a homeserver that has none.
    await expect(
      startMockServer({ host: "0.0.0.0", controlToken: TOKEN, homeserver: createMockHomeserver() }),
    ).rejects.toThrow(/without a control token/);
  });

  it("refuses a token that cannot go in an Authorization header", () => {
    for (const bad of ["", "two words", "tab\there", "naïve"]) {
      expect(() => createMockHomeserver({ controlToken: bad })).toThrow(RangeError);
    }
  });
});

describe("control exposure rules", () => {
  it("counts only 127.0.0.1, ::1 and localhost as loopback", () => {
    expect(["127.0.0.1", "::1", "localhost", "LOCALHOST"].map(isLoopbackHost)).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(["0.0.0.0", "::", "192.168.1.2", "127.0.0.2", "example.org", ""].some(isLoopbackHost)).toBe(false);
  });

  it("lets loopback run open and anything else only with a token", () => {
    expect(controlExposureError("127.0.0.1", undefined)).toBeUndefined();
    expect(controlExposureError("0.0.0.0", "t")).toBeUndefined();
    expect(controlExposureError("0.0.0.0", undefined)).toMatch(
      /^refusing to serve the control API on 0\.0\.0\.0/,
    );
  });

  it("accepts visible ASCII tokens", () => {
    expect(() => checkControlToken("abc-DEF_123.~!")).not.toThrow();
  });
});
