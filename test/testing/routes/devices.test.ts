import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ManualClock, type ProfileName } from "../../../src/testing/index.js";
import {
  call,
  type Harness,
  harnessesOn,
  register,
  startHarness,
  transports,
} from "../support/transports.js";
import { loginDevice, registerUser } from "./e2ee-test-users.js";
import { sharedRoom, since, sync } from "./room-support.js";
import { E2EE_ONLY, extension, slide } from "./sliding-sync-helpers.js";

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

/**
 * Synapse's `DeviceHandler.update_device` (synapse/handlers/device.py) calls `notify_device_update`
 * on every `PUT /devices/{deviceId}`: the owner's room-mates and other devices see the owner in
 * `device_lists.changed`, and re-fetch the keys, whose `unsigned.device_display_name` changed.
 */
describe.each(transports)("a device rename is a device-list change (%s)", (transport) => {
  const start = harnessesOn(transport);

  async function setup(profile: ProfileName = "synapse-1.157") {
    const clock = new ManualClock();
    const server = await start({ profile, clock });
    const alice = await registerUser(server, "alice");
    const bob = await registerUser(server, "bob");
    await sharedRoom(alice, bob);
    const phone = await loginDevice(server, "alice");
    const rename = async (displayName: string) => {
      const res = await alice.call("PUT", `devices/${encodeURIComponent(alice.deviceId)}`, {
        display_name: displayName,
      });
      expect(res.status).toBe(200);
    };
    return { server, clock, alice, bob, phone, rename };
  }

  it("shows the owner in a room-mate's sliding sync e2ee device_lists.changed after pos", async () => {
    const { server, alice, bob, rename } = await setup();
    const first = await slide(server, bob, E2EE_ONLY);
    const quiet = await slide(server, bob, E2EE_ONLY, { pos: first.body.pos as string });
    await rename("Work laptop");
    const renamed = await slide(server, bob, E2EE_ONLY, { pos: quiet.body.pos as string });

    expect(extension(quiet, "e2ee").device_lists).toEqual({ changed: [], left: [] });
    expect(extension(renamed, "e2ee").device_lists).toEqual({ changed: [alice.userId], left: [] });
  });

  it("shows the owner in a room-mate's and the owner's other device's classic /sync since", async () => {
    const { alice, bob, phone, rename } = await setup();
    const bobBefore = await sync(bob);
    const phoneBefore = await sync(phone);
    await rename("Work laptop");

    expect((await sync(bob, since(bobBefore.next_batch, "timeout=0"))).device_lists).toEqual({
      changed: [alice.userId],
    });
    expect((await sync(phone, since(phoneBefore.next_batch, "timeout=0"))).device_lists).toEqual({
      changed: [alice.userId],
    });
  });

  it("wakes a room-mate's long-poll", async () => {
    const { clock, alice, bob, rename } = await setup();
    const before = await sync(bob);
    const waiting = sync(bob, since(before.next_batch, "timeout=60000"));
    await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1), { interval: 1 });
    await rename("Phone");
    const woken = await Promise.race([waiting, new Promise((r) => setTimeout(r, 1_000, "still waiting"))]);
    // Let a poll the rename did not wake time out on the server's clock rather than hang.
    await clock.advance(60_000);
    expect(woken).toMatchObject({ device_lists: { changed: [alice.userId] } });
  });

  it("is no change on tuwunel, which bumps only its federation device-list version", async () => {
    const { server, bob, rename } = await setup("tuwunel");
    const before = await sync(bob);
    const first = await slide(server, bob, E2EE_ONLY);
    await rename("Work laptop");

    expect((await sync(bob, since(before.next_batch, "timeout=0"))).device_lists).toBeUndefined();
    const after = await slide(server, bob, E2EE_ONLY, { pos: first.body.pos as string });
    expect(extension(after, "e2ee")).not.toHaveProperty("device_lists");
  });
});
