import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { call, type Harness, register, startHarness, transports } from "../support/transports.js";

describe.each(transports)("accounts (%s)", (transport) => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness(transport);
  });
  afterEach(async () => {
    await h.close();
  });

  describe("register", () => {
    it("answers a first call without auth with 401, the dummy flow and a session", async () => {
      const res = await call(h, "POST", "/_matrix/client/v3/register", {
        body: { username: "alice", password: "pw" },
      });
      expect(res.status).toBe(401);
      expect(res.body).toEqual({
        flows: [{ stages: ["m.login.dummy"] }],
        params: {},
        session: expect.any(String),
      });
      expect(h.homeserver.state.accounts.userExists("@alice:localhost")).toBe(false);
    });

    it("creates the user and a device when the dummy stage completes the session", async () => {
      const alice = await register(h, "Alice");
      expect(alice.userId).toBe("@alice:localhost");
      expect(alice.deviceId).toMatch(/^[A-Z]{10}$/);
      expect(alice.token).not.toBe("");
      const who = await call(h, "GET", "/_matrix/client/v3/account/whoami", { token: alice.token });
      expect(who.body).toEqual({ user_id: "@alice:localhost", device_id: alice.deviceId, is_guest: false });
    });

    it("accepts dummy auth without a session in one call and honours device_id", async () => {
      const res = await call(h, "POST", "/_matrix/client/v3/register", {
        body: {
          username: "bob",
          password: "pw",
          device_id: "BOBPHONE",
          initial_device_display_name: "Bob's phone",
          auth: { type: "m.login.dummy" },
        },
      });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        user_id: "@bob:localhost",
        device_id: "BOBPHONE",
        home_server: "localhost",
      });
      const dev = await call(h, "GET", "/_matrix/client/v3/devices/BOBPHONE", {
        token: res.body.access_token as string,
      });
      expect(dev.body.display_name).toBe("Bob's phone");
    });

    it("remembers the password sent with the first call of the session", async () => {
      const first = await call(h, "POST", "/_matrix/client/v3/register", {
        body: { username: "carol", password: "pw1" },
      });
      const second = await call(h, "POST", "/_matrix/client/v3/register", {
        body: { username: "carol", auth: { type: "m.login.dummy", session: first.body.session } },
      });
      expect(second.status).toBe(200);
      const login = await call(h, "POST", "/_matrix/client/v3/login", {
        body: { type: "m.login.password", identifier: { type: "m.id.user", user: "carol" }, password: "pw1" },
      });
      expect(login.status).toBe(200);
    });

    it("needs a password once auth is complete", async () => {
      const res = await call(h, "POST", "/_matrix/client/v3/register", {
        body: { username: "dave", auth: { type: "m.login.dummy" } },
      });
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe("M_MISSING_PARAM");
      expect(h.homeserver.state.accounts.userExists("@dave:localhost")).toBe(false);
    });

    it("refuses a taken user id on the first call, before UIA, case-insensitively", async () => {
      await register(h, "erin");
      const res = await call(h, "POST", "/_matrix/client/v3/register", {
        body: { username: "ERIN", password: "x" },
      });
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe("M_USER_IN_USE");
    });

    it.each([
      ["bad characters", "al ice", "M_INVALID_USERNAME"],
      ["a leading underscore", "_bot", "M_INVALID_USERNAME"],
      ["an all-digit localpart", "12345", "M_INVALID_USERNAME"],
      ["an over-long id", "a".repeat(260), "M_INVALID_USERNAME"],
    ])("refuses a username with %s", async (_, username, errcode) => {
      const res = await call(h, "POST", "/_matrix/client/v3/register", { body: { username, password: "x" } });
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe(errcode);
    });

    it("refuses an unknown UIA session and a stage that is not offered", async () => {
      const unknown = await call(h, "POST", "/_matrix/client/v3/register", {
        body: { username: "fred", password: "x", auth: { type: "m.login.dummy", session: "nope" } },
      });
      expect(unknown.status).toBe(400);
      const wrongStage = await call(h, "POST", "/_matrix/client/v3/register", {
        body: { username: "fred", password: "x", auth: { type: "m.login.recaptcha" } },
      });
      expect(wrongStage.status).toBe(400);
      expect(h.homeserver.state.accounts.userExists("@fred:localhost")).toBe(false);
    });

    it("picks a numeric user id when no username is given", async () => {
      const res = await call(h, "POST", "/_matrix/client/v3/register", {
        body: { password: "x", auth: { type: "m.login.dummy" } },
      });
      expect(res.status).toBe(200);
      expect(res.body.user_id).toMatch(/^@\d+:localhost$/);
    });

    it("registers without logging in when inhibit_login is set", async () => {
      const res = await call(h, "POST", "/_matrix/client/v3/register", {
        body: { username: "gina", password: "x", inhibit_login: true, auth: { type: "m.login.dummy" } },
      });
      expect(res.body).toEqual({ user_id: "@gina:localhost", home_server: "localhost" });
      expect(h.homeserver.state.accounts.deviceIds("@gina:localhost")).toEqual([]);
    });

    it("refuses guests and requests that carry an access token", async () => {
      const guest = await call(h, "POST", "/_matrix/client/v3/register?kind=guest", { body: {} });
      expect(guest.status).toBe(403);
      const alice = await register(h, "alice");
      const withToken = await call(h, "POST", "/_matrix/client/v3/register", {
        token: alice.token,
        body: {},
      });
      expect(withToken.status).toBe(400);
    });
  });

  describe("login", () => {
    it("advertises password login", async () => {
      const res = await call(h, "GET", "/_matrix/client/v3/login");
      expect(res.body).toEqual({ flows: [{ type: "m.login.password" }] });
    });

    it("creates a new device per login with m.id.user, and with the deprecated top-level user", async () => {
      const alice = await register(h, "alice", "pw");
      const a = await call(h, "POST", "/_matrix/client/v3/login", {
        body: {
          type: "m.login.password",
          identifier: { type: "m.id.user", user: "@alice:localhost" },
          password: "pw",
        },
      });
      const b = await call(h, "POST", "/_matrix/client/v3/login", {
        body: {
          type: "m.login.password",
          user: "alice",
          password: "pw",
          initial_device_display_name: "laptop",
        },
      });
      expect(a.status).toBe(200);
      expect(b.status).toBe(200);
      expect(a.body).toMatchObject({ user_id: "@alice:localhost", home_server: "localhost" });
      const ids = new Set([alice.deviceId, a.body.device_id, b.body.device_id]);
      expect(ids.size).toBe(3);
      expect(h.homeserver.state.accounts.deviceIds("@alice:localhost").sort()).toEqual([...ids].sort());
    });

    it("reuses an existing device id with a new token that works alongside the old one", async () => {
      const alice = await register(h, "alice", "pw");
      const again = await call(h, "POST", "/_matrix/client/v3/login", {
        body: { type: "m.login.password", user: "alice", password: "pw", device_id: alice.deviceId },
      });
      expect(again.body.device_id).toBe(alice.deviceId);
      expect(again.body.access_token).not.toBe(alice.token);
      for (const token of [alice.token, again.body.access_token as string]) {
        expect((await call(h, "GET", "/_matrix/client/v3/account/whoami", { token })).status).toBe(200);
      }
      expect(h.homeserver.state.accounts.deviceIds("@alice:localhost")).toEqual([alice.deviceId]);
    });

    it("answers 403 M_FORBIDDEN for a wrong password and for an unknown user alike", async () => {
      await register(h, "alice", "pw");
      for (const user of ["alice", "nobody"]) {
        const res = await call(h, "POST", "/_matrix/client/v3/login", {
          body: { type: "m.login.password", identifier: { type: "m.id.user", user }, password: "wrong" },
        });
        expect(res.status).toBe(403);
        expect(res.body).toEqual({ errcode: "M_FORBIDDEN", error: "Invalid username or password" });
      }
    });

    it.each([
      ["no type", { user: "a", password: "p" }, "M_UNKNOWN"],
      ["a non-string type", { type: 1, user: "a", password: "p" }, "M_INVALID_PARAM"],
      ["an unknown type", { type: "m.login.token", token: "t" }, "M_UNKNOWN"],
      ["no password", { type: "m.login.password", user: "a" }, "M_MISSING_PARAM"],
      ["a non-string password", { type: "m.login.password", user: "a", password: 5 }, "M_INVALID_PARAM"],
      [
        "a third-party identifier",
        { type: "m.login.password", identifier: { type: "m.id.thirdparty" }, password: "p" },
        "M_UNKNOWN",
      ],
      ["no user at all", { type: "m.login.password", password: "p" }, "M_UNKNOWN"],
    ])("refuses a submission with %s", async (_, body, errcode) => {
      const res = await call(h, "POST", "/_matrix/client/v3/login", { body });
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe(errcode);
    });
  });

  describe("whoami and logout", () => {
    it("needs a token: 401 M_MISSING_TOKEN without one, M_UNKNOWN_TOKEN with a wrong one", async () => {
      const missing = await call(h, "GET", "/_matrix/client/v3/account/whoami");
      expect(missing.status).toBe(401);
      expect(missing.body.errcode).toBe("M_MISSING_TOKEN");
      const unknown = await call(h, "GET", "/_matrix/client/v3/account/whoami", { token: "mock_nope" });
      expect(unknown.status).toBe(401);
      expect(unknown.body).toEqual({
        errcode: "M_UNKNOWN_TOKEN",
        error: "Unrecognised access token",
        soft_logout: false,
      });
    });

    it("takes the token from ?access_token= too, but not from both places at once", async () => {
      const alice = await register(h, "alice");
      const viaQuery = await call(h, "GET", `/_matrix/client/v3/account/whoami?access_token=${alice.token}`);
      expect(viaQuery.body.user_id).toBe(alice.userId);
      const both = await call(h, "GET", `/_matrix/client/v3/account/whoami?access_token=${alice.token}`, {
        token: alice.token,
      });
      expect(both.status).toBe(401);
      expect(both.body.errcode).toBe("M_MISSING_TOKEN");
      const basic = await call(h, "GET", "/_matrix/client/v3/account/whoami", {
        headers: { Authorization: `Basic ${alice.token}` },
      });
      expect(basic.body.errcode).toBe("M_MISSING_TOKEN");
    });

    it("logout deletes the device, its token, its keys and its to-device inbox", async () => {
      const alice = await register(h, "alice", "pw");
      const other = await call(h, "POST", "/_matrix/client/v3/login", {
        body: { type: "m.login.password", user: "alice", password: "pw" },
      });
      const { keys, toDevice } = h.homeserver.state;
      keys.setDeviceKeys(alice.userId, alice.deviceId, { user_id: alice.userId, device_id: alice.deviceId });
      toDevice.enqueue(alice.userId, alice.deviceId, { type: "m.dummy", sender: alice.userId, content: {} });
      expect(toDevice.pendingCount(alice.userId, alice.deviceId)).toBe(1);
      expect(keys.deviceKeys(alice.userId, alice.deviceId)).toBeDefined();
      const out = await call(h, "POST", "/_matrix/client/v3/logout", { token: alice.token });
      expect(out.status).toBe(200);
      expect((await call(h, "GET", "/_matrix/client/v3/account/whoami", { token: alice.token })).status).toBe(
        401,
      );
      expect(h.homeserver.state.accounts.deviceIds(alice.userId)).toEqual([other.body.device_id]);
      expect(keys.deviceKeys(alice.userId, alice.deviceId)).toBeUndefined();
      expect(toDevice.pendingCount(alice.userId, alice.deviceId)).toBe(0);
      const stillIn = await call(h, "GET", "/_matrix/client/v3/account/whoami", {
        token: other.body.access_token as string,
      });
      expect(stillIn.status).toBe(200);
    });

    it("logout/all deletes every device of the caller and no one else's", async () => {
      const alice = await register(h, "alice", "pw");
      await call(h, "POST", "/_matrix/client/v3/login", {
        body: { type: "m.login.password", user: "alice", password: "pw" },
      });
      const bob = await register(h, "bob");
      expect((await call(h, "POST", "/_matrix/client/v3/logout/all", { token: alice.token })).status).toBe(
        200,
      );
      expect(h.homeserver.state.accounts.deviceIds(alice.userId)).toEqual([]);
      expect((await call(h, "GET", "/_matrix/client/v3/account/whoami", { token: bob.token })).status).toBe(
        200,
      );
    });

    it("serves the r0 prefix like v3, as Synapse does", async () => {
      const alice = await register(h, "alice");
      const res = await call(h, "GET", "/_matrix/client/r0/account/whoami", { token: alice.token });
      expect(res.body.user_id).toBe(alice.userId);
    });
  });
});
