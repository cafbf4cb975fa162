import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { call, type Harness, startHarness, transports } from "../support/transports.js";

const WHOAMI = "/_matrix/client/v3/account/whoami";

describe.each(transports)("the access-token controls (%s)", (transport) => {
  let h: Harness;
  let alice: { userId: string; deviceId: string; accessToken: string };
  beforeEach(async () => {
    h = await startHarness(transport);
    alice = h.homeserver.control.createUser("alice", { password: "pw" })!;
  });
  afterEach(async () => {
    await h.close();
  });

  const whoami = (token: string) => call(h, "GET", WHOAMI, { token });
  const logout = (token: string) => call(h, "POST", "/_matrix/client/v3/logout", { token, body: {} });

  describe("expireAccessToken in-process", () => {
    it("makes the token answer 401 M_UNKNOWN_TOKEN soft_logout true by default, in the request log", async () => {
      h.homeserver.control.expireAccessToken(alice.accessToken);

      const res = await whoami(alice.accessToken);

      expect(res.status).toBe(401);
      expect(res.body).toEqual({
        errcode: "M_UNKNOWN_TOKEN",
        error: "Access token has expired",
        soft_logout: true,
      });
      expect(h.homeserver.control.requestLog()).toMatchObject([
        { method: "GET", path: WHOAMI, status: 401, errcode: "M_UNKNOWN_TOKEN" },
      ]);
    });

    it("answers soft_logout false when asked, and then refuses even logout", async () => {
      h.homeserver.control.expireAccessToken(alice.accessToken, { softLogout: false });

      const res = await whoami(alice.accessToken);
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ errcode: "M_UNKNOWN_TOKEN", soft_logout: false });
      const out = await logout(alice.accessToken);
      expect(out.status).toBe(401);
      expect(h.homeserver.state.accounts.hasDevice(alice.userId, alice.deviceId)).toBe(true);
    });

    it("lets a soft-logged-out token log out", async () => {
      h.homeserver.control.expireAccessToken(alice.accessToken, { softLogout: true });
      expect((await logout(alice.accessToken)).status).toBe(200);
      expect(h.homeserver.state.accounts.hasDevice(alice.userId, alice.deviceId)).toBe(false);
    });

    it("expires only that token: another token of the same device still works", async () => {
      const again = await call(h, "POST", "/_matrix/client/v3/login", {
        body: { type: "m.login.password", user: "alice", password: "pw", device_id: alice.deviceId },
      });
      h.homeserver.control.expireAccessToken(alice.accessToken);
      expect((await whoami(again.body.access_token as string)).status).toBe(200);
    });

    it("leaves the session's refresh token working, so a client can recover", async () => {
      const login = await call(h, "POST", "/_matrix/client/v3/login", {
        body: { type: "m.login.password", user: "alice", password: "pw", refresh_token: true },
      });
      h.homeserver.control.expireAccessToken(login.body.access_token as string);
      expect((await whoami(login.body.access_token as string)).body.soft_logout).toBe(true);

      const refreshed = await call(h, "POST", "/_matrix/client/v3/refresh", {
        body: { refresh_token: login.body.refresh_token },
      });

      expect(refreshed.status).toBe(200);
      expect((await whoami(refreshed.body.access_token as string)).body).toMatchObject({
        user_id: alice.userId,
        device_id: login.body.device_id,
      });
    });

    it("throws RangeError for an unknown token, without the token in the message", () => {
      const token = "mock_not-a-token-anyone-issued";
      let caught: unknown;
      try {
        h.homeserver.control.expireAccessToken(token);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(RangeError);
      expect(String(caught)).not.toContain(token);
    });
  });

  describe("over HTTP", () => {
    it("POST /_mock/expire_access_token expires the token with the soft_logout asked for", async () => {
      const res = await call(h, "POST", "/_mock/expire_access_token", {
        body: { access_token: alice.accessToken, soft_logout: false },
      });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({});
      const refused = await whoami(alice.accessToken);
      expect(refused.status).toBe(401);
      expect(refused.body).toMatchObject({ errcode: "M_UNKNOWN_TOKEN", soft_logout: false });
      // The control call itself is not logged; the refused request is.
      expect(h.homeserver.control.requestLog().map((e) => [e.path, e.status])).toEqual([[WHOAMI, 401]]);
    });

    it("defaults soft_logout to true", async () => {
      await call(h, "POST", "/_mock/expire_access_token", { body: { access_token: alice.accessToken } });
      expect((await whoami(alice.accessToken)).body.soft_logout).toBe(true);
    });

    it("answers 400 M_INVALID_PARAM for an unknown token and 400 for a malformed body", async () => {
      const unknown = await call(h, "POST", "/_mock/expire_access_token", {
        body: { access_token: "mock_nobody-has-this" },
      });
      expect(unknown.status).toBe(400);
      expect(unknown.body.errcode).toBe("M_INVALID_PARAM");
      expect(JSON.stringify(unknown.body)).not.toContain("mock_nobody-has-this");
      const malformed = await call(h, "POST", "/_mock/expire_access_token", {
        body: { access_token: alice.accessToken, soft_logout: "yes" },
      });
      expect(malformed.status).toBe(400);
      expect((await whoami(alice.accessToken)).status).toBe(200);
    });

    it("GET and PUT /_mock/token_lifetimes read and change the lifetimes", async () => {
      expect((await call(h, "GET", "/_mock/token_lifetimes")).body).toEqual({
        access_token_ms: null,
        refresh_token_ms: null,
      });
      const put = await call(h, "PUT", "/_mock/token_lifetimes", { body: { access_token_ms: 5_000 } });
      expect(put.body).toEqual({ access_token_ms: 5_000, refresh_token_ms: null });
      expect(h.homeserver.control.tokenLifetimes()).toEqual({ accessTokenMs: 5_000, refreshTokenMs: null });

      const login = await call(h, "POST", "/_matrix/client/v3/login", {
        body: { type: "m.login.password", user: "alice", password: "pw", refresh_token: true },
      });
      expect(login.body.expires_in_ms).toBe(5_000);

      await call(h, "PUT", "/_mock/token_lifetimes", { body: { access_token_ms: null } });
      expect(h.homeserver.control.tokenLifetimes().accessTokenMs).toBeNull();
    });

    it("refuses lifetimes that are not positive integers", async () => {
      for (const access_token_ms of [0, -5, 1.5]) {
        const res = await call(h, "PUT", "/_mock/token_lifetimes", { body: { access_token_ms } });
        expect(res.status).toBe(400);
        expect(res.body.errcode).toBe("M_INVALID_PARAM");
      }
      expect(() => h.homeserver.control.setTokenLifetimes({ refreshTokenMs: 0 })).toThrow(RangeError);
      expect(h.homeserver.control.tokenLifetimes()).toEqual({ accessTokenMs: null, refreshTokenMs: null });
    });
  });
});
