import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/testing/index.js";
import { call, type Harness, startHarness, transports } from "../support/transports.js";

const LOGIN = "/_matrix/client/v3/login";
const REFRESH = "/_matrix/client/v3/refresh";
const WHOAMI = "/_matrix/client/v3/account/whoami";

describe.each(transports)("refresh tokens and access-token expiry (%s)", (transport) => {
  let h: Harness;
  let clock: ManualClock;
  beforeEach(async () => {
    clock = new ManualClock();
    h = await startHarness(transport, { clock });
  });
  afterEach(async () => {
    await h.close();
  });

  async function login(user: string, extra: Record<string, unknown> = {}) {
    return call(h, "POST", LOGIN, {
      body: { type: "m.login.password", identifier: { type: "m.id.user", user }, password: "pw", ...extra },
    });
  }

  async function refreshableLogin(user = "alice") {
    if (!h.homeserver.state.accounts.userExists(`@${user}:localhost`)) {
      h.homeserver.control.createUser(user, { password: "pw" });
    }
    const res = await login(user, { refresh_token: true });
    expect(res.status).toBe(200);
    return res.body as {
      access_token: string;
      refresh_token: string;
      device_id: string;
      expires_in_ms?: number;
    };
  }

  const refresh = (token: unknown) => call(h, "POST", REFRESH, { body: { refresh_token: token } });
  const whoami = (token: string) => call(h, "GET", WHOAMI, { token });

  describe("issuing", () => {
    it("returns a refresh token without expires_in_ms from login when no lifetime is set", async () => {
      const session = await refreshableLogin();
      expect(session.refresh_token).toMatch(/^mockr_/);
      expect(session.refresh_token).not.toBe(session.access_token);
      expect(session).not.toHaveProperty("expires_in_ms");
      await clock.advance(365 * 24 * 3600_000);
      expect((await whoami(session.access_token)).status).toBe(200);
    });

    it("returns neither field when the client did not ask, or asked with false", async () => {
      h.homeserver.control.createUser("alice", { password: "pw" });
      h.homeserver.control.setTokenLifetimes({ accessTokenMs: 60_000 });
      for (const extra of [{}, { refresh_token: false }]) {
        const res = await login("alice", extra);
        expect(res.status).toBe(200);
        expect(res.body).not.toHaveProperty("refresh_token");
        expect(res.body).not.toHaveProperty("expires_in_ms");
        // A token issued without a refresh token never expires (Synapse's default config).
        await clock.advance(120_000);
        expect((await whoami(res.body.access_token as string)).status).toBe(200);
      }
    });

    it("returns expires_in_ms from the configured lifetime, at login and at registration", async () => {
      h.homeserver.control.setTokenLifetimes({ accessTokenMs: 300_000 });
      const session = await refreshableLogin();
      expect(session.expires_in_ms).toBe(300_000);

      const res = await call(h, "POST", "/_matrix/client/v3/register", {
        body: { username: "bob", password: "pw", refresh_token: true, auth: { type: "m.login.dummy" } },
      });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        refresh_token: expect.stringMatching(/^mockr_/),
        expires_in_ms: 300_000,
      });
    });

    it("refuses a refresh_token parameter that is not a boolean, as Synapse does", async () => {
      h.homeserver.control.createUser("alice", { password: "pw" });
      const res = await login("alice", { refresh_token: "yes" });
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ errcode: "M_UNKNOWN", error: "`refresh_token` should be true or false." });
      const reg = await call(h, "POST", "/_matrix/client/v3/register", {
        body: { username: "bob", password: "pw", refresh_token: 1, auth: { type: "m.login.dummy" } },
      });
      expect(reg.status).toBe(400);
      expect(reg.body.errcode).toBe("M_UNKNOWN");
      expect(h.homeserver.state.accounts.userExists("@bob:localhost")).toBe(false);
    });
  });

  describe("expiry", () => {
    it("refuses an expired token with 401 M_UNKNOWN_TOKEN soft_logout true and logs the refusal", async () => {
      h.homeserver.control.setTokenLifetimes({ accessTokenMs: 60_000 });
      const session = await refreshableLogin();
      await clock.advance(60_000);
      expect((await whoami(session.access_token)).status).toBe(200);
      h.homeserver.control.clearRequestLog();

      await clock.advance(1);
      const res = await whoami(session.access_token);

      expect(res.status).toBe(401);
      expect(res.body).toEqual({
        errcode: "M_UNKNOWN_TOKEN",
        error: "Access token has expired",
        soft_logout: true,
      });
      expect(h.homeserver.control.requestLog()).toMatchObject([
        { method: "GET", path: WHOAMI, status: 401, errcode: "M_UNKNOWN_TOKEN", userId: undefined },
      ]);
    });

    it("still lets a soft-logged-out client log out, as Synapse's allow_expired does", async () => {
      h.homeserver.control.setTokenLifetimes({ accessTokenMs: 1_000 });
      const session = await refreshableLogin();
      await clock.advance(5_000);
      expect((await whoami(session.access_token)).status).toBe(401);

      const out = await call(h, "POST", "/_matrix/client/v3/logout", {
        token: session.access_token,
        body: {},
      });

      expect(out.status).toBe(200);
      expect(h.homeserver.state.accounts.hasDevice("@alice:localhost", session.device_id)).toBe(false);
      const again = await refresh(session.refresh_token);
      expect(again.status).toBe(401);
      expect(again.body).toMatchObject({ errcode: "M_UNKNOWN_TOKEN", soft_logout: false });
    });
  });

  describe("POST /refresh", () => {
    it("trades a refresh token for a working access token on the same device", async () => {
      h.homeserver.control.setTokenLifetimes({ accessTokenMs: 60_000 });
      const session = await refreshableLogin();
      await clock.advance(61_000);
      expect((await whoami(session.access_token)).status).toBe(401);

      const res = await refresh(session.refresh_token);

      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        access_token: expect.stringMatching(/^mock_/),
        refresh_token: expect.stringMatching(/^mockr_/),
        expires_in_ms: 60_000,
      });
      expect(res.body.refresh_token).not.toBe(session.refresh_token);
      const who = await whoami(res.body.access_token as string);
      expect(who.body).toMatchObject({ user_id: "@alice:localhost", device_id: session.device_id });
      expect(h.homeserver.state.accounts.deviceIds("@alice:localhost")).toHaveLength(2);
    });

    it("answers an unknown refresh token with 401 M_UNKNOWN_TOKEN and soft_logout false", async () => {
      const res = await refresh("mockr_nonsense");
      expect(res.status).toBe(401);
      expect(res.body).toEqual({
        errcode: "M_UNKNOWN_TOKEN",
        error: "refresh token does not exist",
        soft_logout: false,
      });
    });

    it("keeps the old refresh token usable until the new access token is used, then refuses it", async () => {
      const session = await refreshableLogin();
      const lost = await refresh(session.refresh_token);
      expect(lost.status).toBe(200);

      // The answer was lost: the client retries with the same token and gets a fresh pair.
      const retry = await refresh(session.refresh_token);
      expect(retry.status).toBe(200);
      // The pair from the lost answer was replaced.
      expect((await whoami(lost.body.access_token as string)).status).toBe(401);
      expect((await refresh(lost.body.refresh_token)).status).toBe(401);

      expect((await whoami(retry.body.access_token as string)).status).toBe(200);
      const reused = await refresh(session.refresh_token);
      expect(reused.status).toBe(403);
      expect(reused.body).toEqual({ errcode: "M_FORBIDDEN", error: "refresh token isn't valid anymore" });
    });

    it("forgets the old refresh token once the new one has been refreshed", async () => {
      const session = await refreshableLogin();
      const first = await refresh(session.refresh_token);
      expect((await refresh(first.body.refresh_token)).status).toBe(200);
      // Synapse deletes the predecessor of the token it refreshes: the old one is now unknown.
      const reused = await refresh(session.refresh_token);
      expect(reused.status).toBe(401);
      expect(reused.body).toMatchObject({ errcode: "M_UNKNOWN_TOKEN", soft_logout: false });
    });

    it("keeps only the last two links: the access token from two refreshes ago stops working", async () => {
      const session = await refreshableLogin();
      const first = await refresh(session.refresh_token);
      // The original access token survives one refresh (it may be in flight) ...
      expect((await whoami(session.access_token)).status).toBe(200);
      await refresh(first.body.refresh_token);
      // ... but not two: Synapse deleted the predecessor with its access token.
      const res = await whoami(session.access_token);
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ errcode: "M_UNKNOWN_TOKEN", soft_logout: false });
      expect((await whoami(first.body.access_token as string)).status).toBe(200);
    });

    it("refuses a refresh token past its lifetime with 403 M_FORBIDDEN", async () => {
      h.homeserver.control.setTokenLifetimes({ refreshTokenMs: 10_000 });
      const session = await refreshableLogin();
      await clock.advance(10_001);
      const res = await refresh(session.refresh_token);
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ errcode: "M_FORBIDDEN", error: "The supplied refresh token has expired" });
    });

    it("validates the body like Synapse: missing → M_MISSING_PARAM, not a string → 400", async () => {
      const missing = await call(h, "POST", REFRESH, { body: {} });
      expect(missing.status).toBe(400);
      expect(missing.body.errcode).toBe("M_MISSING_PARAM");
      const wrong = await refresh(42);
      expect(wrong.status).toBe(400);
      expect(wrong.body).toEqual({ errcode: "M_INVALID_PARAM", error: "Invalid param: refresh_token" });
      const notJson = await call(h, "POST", REFRESH, {
        body: "{",
        headers: { "Content-Type": "application/json" },
      });
      expect(notJson.body.errcode).toBe("M_NOT_JSON");
    });

    it("reports both body problems as M_BAD_JSON under a ruma-style profile", async () => {
      const tuwunel = await startHarness(transport, { profile: "tuwunel" });
      try {
        for (const body of [{}, { refresh_token: 42 }]) {
          const res = await call(tuwunel, "POST", REFRESH, { body });
          expect(res.status).toBe(400);
          expect(res.body.errcode).toBe("M_BAD_JSON");
        }
      } finally {
        await tuwunel.close();
      }
    });

    it("answers under /r0/ too and needs no access token", async () => {
      const session = await refreshableLogin();
      const res = await call(h, "POST", "/_matrix/client/r0/refresh", {
        body: { refresh_token: session.refresh_token },
      });
      expect(res.status).toBe(200);
    });
  });
});
