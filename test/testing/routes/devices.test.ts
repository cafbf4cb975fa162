import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { call, type Harness, register, startHarness, transports } from "../support/transports.js";

describe.each(transports)("devices (%s)", (transport) => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness(transport);
  });
  afterEach(async () => {
    await h.close();
  });

  it("lists the caller's devices with Synapse's fields", async () => {
    const alice = await register(h, "alice");
    const res = await call(h, "GET", "/_matrix/client/v3/devices", { token: alice.token });
    expect(res.status).toBe(200);
    expect(res.body.devices).toEqual([
      {
        user_id: alice.userId,
        device_id: alice.deviceId,
        display_name: null,
        last_seen_ip: expect.toSatisfy((v) => v === null || typeof v === "string"),
        last_seen_ts: expect.any(Number),
      },
    ]);
  });

  it("never shows or changes another user's device", async () => {
    const alice = await register(h, "alice");
    const bob = await register(h, "bob");
    const list = await call(h, "GET", "/_matrix/client/v3/devices", { token: bob.token });
    expect((list.body.devices as { device_id: string }[]).map((d) => d.device_id)).toEqual([bob.deviceId]);
    const get = await call(h, "GET", `/_matrix/client/v3/devices/${alice.deviceId}`, { token: bob.token });
    expect(get.status).toBe(404);
    expect(get.body.errcode).toBe("M_NOT_FOUND");
    const put = await call(h, "PUT", `/_matrix/client/v3/devices/${alice.deviceId}`, {
      token: bob.token,
      body: { display_name: "pwned" },
    });
    expect(put.status).toBe(404);
    const del = await call(h, "DELETE", `/_matrix/client/v3/devices/${alice.deviceId}`, {
      token: bob.token,
      body: { auth: { type: "m.login.dummy" } },
    });
    expect(del.status).toBe(200);
    expect(h.homeserver.state.accounts.device(alice.userId, alice.deviceId)?.displayName).toBeNull();
    expect(h.homeserver.state.accounts.hasDevice(alice.userId, alice.deviceId)).toBe(true);
  });

  it("renames a device and reads it back", async () => {
    const alice = await register(h, "alice");
    const put = await call(h, "PUT", `/_matrix/client/v3/devices/${alice.deviceId}`, {
      token: alice.token,
      body: { display_name: "Work laptop" },
    });
    expect(put).toMatchObject({ status: 200, body: {} });
    const get = await call(h, "GET", `/_matrix/client/v3/devices/${alice.deviceId}`, { token: alice.token });
    expect(get.body).toMatchObject({ device_id: alice.deviceId, display_name: "Work laptop" });
  });

  it("URL-decodes device ids in the path", async () => {
    const alice = await register(h, "alice", "pw");
    const login = await call(h, "POST", "/_matrix/client/v3/login", {
      body: { type: "m.login.password", user: "alice", password: "pw", device_id: "a/b+c" },
    });
    expect(login.body.device_id).toBe("a/b+c");
    const get = await call(h, "GET", `/_matrix/client/v3/devices/${encodeURIComponent("a/b+c")}`, {
      token: alice.token,
    });
    expect(get.body.device_id).toBe("a/b+c");
  });

  it("deletes a device only after UIA, and the deleted device's token stops working", async () => {
    const alice = await register(h, "alice", "pw");
    const phone = await call(h, "POST", "/_matrix/client/v3/login", {
      body: { type: "m.login.password", user: "alice", password: "pw" },
    });
    const path = `/_matrix/client/v3/devices/${phone.body.device_id as string}`;
    const challenge = await call(h, "DELETE", path, { token: alice.token });
    expect(challenge.status).toBe(401);
    expect(challenge.body).toEqual({
      session: expect.any(String),
      flows: [{ stages: ["m.login.password"] }, { stages: ["m.login.dummy"] }],
      params: {},
    });
    expect(h.homeserver.state.accounts.hasDevice(alice.userId, phone.body.device_id as string)).toBe(true);
    const done = await call(h, "DELETE", path, {
      token: alice.token,
      body: { auth: { type: "m.login.dummy", session: challenge.body.session } },
    });
    expect(done).toMatchObject({ status: 200, body: {} });
    expect(h.homeserver.state.accounts.hasDevice(alice.userId, phone.body.device_id as string)).toBe(false);
    const gone = await call(h, "GET", "/_matrix/client/v3/account/whoami", {
      token: phone.body.access_token as string,
    });
    expect(gone.body.errcode).toBe("M_UNKNOWN_TOKEN");
  });

  it("accepts the caller's password as the UIA stage and refuses a wrong one with 401 and errcode", async () => {
    const alice = await register(h, "alice", "pw");
    const path = `/_matrix/client/v3/devices/${alice.deviceId}`;
    const wrong = await call(h, "DELETE", path, {
      token: alice.token,
      body: {
        auth: { type: "m.login.password", identifier: { type: "m.id.user", user: "alice" }, password: "no" },
      },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ errcode: "M_FORBIDDEN", completed: [], session: expect.any(String) });
    expect(h.homeserver.state.accounts.hasDevice(alice.userId, alice.deviceId)).toBe(true);
    const right = await call(h, "DELETE", path, {
      token: alice.token,
      body: {
        auth: {
          type: "m.login.password",
          identifier: { type: "m.id.user", user: "alice" },
          password: "pw",
          session: wrong.body.session,
        },
      },
    });
    expect(right.status).toBe(200);
    expect(h.homeserver.state.accounts.hasDevice(alice.userId, alice.deviceId)).toBe(false);
  });

  it("refuses another user's correct password as UIA for the caller", async () => {
    const alice = await register(h, "alice", "pw");
    await register(h, "bob", "bobpw");
    const res = await call(h, "DELETE", `/_matrix/client/v3/devices/${alice.deviceId}`, {
      token: alice.token,
      body: { auth: { type: "m.login.password", user: "bob", password: "bobpw" } },
    });
    expect(res.status).toBe(403);
    expect(h.homeserver.state.accounts.hasDevice(alice.userId, alice.deviceId)).toBe(true);
  });

  it("refuses a UIA session started for another request", async () => {
    const alice = await register(h, "alice", "pw");
    const regChallenge = await call(h, "POST", "/_matrix/client/v3/register", {
      body: { username: "zed", password: "x" },
    });
    const res = await call(h, "DELETE", `/_matrix/client/v3/devices/${alice.deviceId}`, {
      token: alice.token,
      body: { auth: { type: "m.login.dummy", session: regChallenge.body.session } },
    });
    expect(res.status).toBe(403);
    expect(h.homeserver.state.accounts.hasDevice(alice.userId, alice.deviceId)).toBe(true);
  });

  it("deletes several devices with POST /delete_devices", async () => {
    const alice = await register(h, "alice", "pw");
    const a = await call(h, "POST", "/_matrix/client/v3/login", {
      body: { type: "m.login.password", user: "alice", password: "pw" },
    });
    const b = await call(h, "POST", "/_matrix/client/v3/login", {
      body: { type: "m.login.password", user: "alice", password: "pw" },
    });
    const res = await call(h, "POST", "/_matrix/client/v3/delete_devices", {
      token: alice.token,
      body: { devices: [a.body.device_id, b.body.device_id], auth: { type: "m.login.dummy" } },
    });
    expect(res.status).toBe(200);
    expect(h.homeserver.state.accounts.deviceIds(alice.userId)).toEqual([alice.deviceId]);
  });

  it("announces device creation and deletion as device-list changes", async () => {
    const alice = await register(h, "alice", "pw");
    const before = h.homeserver.state.keys.position;
    const phone = await call(h, "POST", "/_matrix/client/v3/login", {
      body: { type: "m.login.password", user: "alice", password: "pw" },
    });
    const afterLogin = h.homeserver.state.keys.position;
    expect(afterLogin).toBeGreaterThan(before);
    await call(h, "DELETE", `/_matrix/client/v3/devices/${phone.body.device_id as string}`, {
      token: alice.token,
      body: { auth: { type: "m.login.dummy" } },
    });
    expect(h.homeserver.state.keys.position).toBeGreaterThan(afterLogin);
    expect(h.homeserver.state.keys.changedUsersSince(alice.userId, before)).toContain(alice.userId);
  });
});
