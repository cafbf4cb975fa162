import { describe, expect, it } from "vitest";
import type { ProfileName } from "../../../src/testing/index.js";
import { harnessesOn, type StartHarness, transports } from "../support/transports.js";
import {
  deviceKeysFor,
  loginDevice,
  registerUser,
  send,
  signedCurveKey,
  type TestDevice,
} from "./e2ee-test-users.js";
import { invite, leave, sharedRoom, since, sync } from "./room-support.js";

/** A fresh mock on the suite's transport with two registered users. */
async function twoUsers(start: StartHarness, profile?: ProfileName) {
  const server = await start(profile ? { profile } : {});
  const alice = await registerUser(server, "alice");
  const bob = await registerUser(server, "bob");
  return { server, mock: server.homeserver, alice, bob };
}

describe.each(transports)("POST keys/upload (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("stores device and one-time keys and reports the counts, signed_curve25519 included", async () => {
    const { alice } = await twoUsers(start);

    const empty = await alice.call("POST", "keys/upload", {});
    const res = await alice.call("POST", "keys/upload", {
      device_keys: deviceKeysFor(alice),
      one_time_keys: {
        "signed_curve25519:AAAA": signedCurveKey(alice, "otk1"),
        "signed_curve25519:AAAB": signedCurveKey(alice, "otk2"),
        "curve25519:AAAC": "unsigned-otk",
      },
    });

    expect(empty).toEqual({ status: 200, body: { one_time_key_counts: { signed_curve25519: 0 } } });
    expect(res).toEqual({
      status: 200,
      body: { one_time_key_counts: { signed_curve25519: 2, curve25519: 1 } },
    });
  });

  it("omits a zero signed_curve25519 count under the msc profile, as the spec lists only held keys", async () => {
    const { alice } = await twoUsers(start, "msc");
    const overridden = await start({ profile: "msc", overrides: { seedSignedCurve25519Count: true } });
    const carol = await registerUser(overridden, "carol");

    expect((await alice.call("POST", "keys/upload", {})).body).toEqual({ one_time_key_counts: {} });
    expect((await carol.call("POST", "keys/upload", {})).body).toEqual({
      one_time_key_counts: { signed_curve25519: 0 },
    });
  });

  it.each([
    ["synapse-1.157", "M_BAD_JSON"],
    ["tuwunel", "M_UNKNOWN"],
  ] as const)(
    "refuses device keys of another user or device under %s with %s and stores nothing",
    async (profile, errcode) => {
      const { server, mock, alice, bob } = await twoUsers(start, profile);
      const otherDevice = await loginDevice(server, "alice");

      const asBob = await alice.call("POST", "keys/upload", {
        device_keys: deviceKeysFor(bob),
        one_time_keys: { "signed_curve25519:A": signedCurveKey(alice, "otk") },
      });
      const asOtherDevice = await alice.call("POST", "keys/upload", {
        device_keys: deviceKeysFor(otherDevice),
      });

      expect(asBob).toMatchObject({ status: 400, body: { errcode } });
      expect(asOtherDevice).toMatchObject({ status: 400, body: { errcode } });
      const query = await bob.call("POST", "keys/query", {
        device_keys: { [alice.userId]: [], [bob.userId]: [] },
      });
      expect(query.body.device_keys).toEqual({ [alice.userId]: {}, [bob.userId]: {} });
      expect(mock.state.keys.oneTimeKeyCounts(alice.userId, alice.deviceId)).toEqual({});
    },
  );

  it("refuses a different key under a one-time key id already held, naming the id but no key", async () => {
    const { mock, alice } = await twoUsers(start);
    await alice.call("POST", "keys/upload", {
      one_time_keys: { "signed_curve25519:A": signedCurveKey(alice, "k1") },
    });

    const res = await alice.call("POST", "keys/upload", {
      one_time_keys: {
        "signed_curve25519:A": signedCurveKey(alice, "secret-other-key"),
        "signed_curve25519:B": signedCurveKey(alice, "k2"),
      },
    });

    expect(res).toMatchObject({ status: 400, body: { errcode: "M_UNKNOWN" } });
    expect(String(res.body.error)).toContain("signed_curve25519:A");
    expect(String(res.body.error)).not.toContain("secret-other-key");
    expect(mock.state.keys.oneTimeKeyCounts(alice.userId, alice.deviceId)).toEqual({ signed_curve25519: 1 });
  });

  it("keeps the stored one-time key on a conflicting id under tuwunel and stores the rest", async () => {
    const { alice, bob } = await twoUsers(start, "tuwunel");
    await alice.call("POST", "keys/upload", {
      one_time_keys: { "signed_curve25519:A": signedCurveKey(alice, "k1") },
    });

    const res = await alice.call("POST", "keys/upload", {
      one_time_keys: {
        "signed_curve25519:A": signedCurveKey(alice, "other"),
        "signed_curve25519:B": signedCurveKey(alice, "k2"),
      },
    });
    const claimed = await bob.call("POST", "keys/claim", {
      one_time_keys: { [alice.userId]: { [alice.deviceId]: "signed_curve25519" } },
    });

    expect(res).toEqual({ status: 200, body: { one_time_key_counts: { signed_curve25519: 2 } } });
    expect(claimed.body.one_time_keys).toEqual({
      [alice.userId]: { [alice.deviceId]: { "signed_curve25519:A": signedCurveKey(alice, "k1") } },
    });
  });

  it.each([
    ["a body that is not JSON", "{not json", 400, "M_NOT_JSON"],
    ["an array body", [], 400, "M_BAD_JSON"],
    ["device keys missing one field", "missing-user-id", 400, "M_MISSING_PARAM"],
    ["device keys of the wrong type", { device_keys: "keys" }, 400, "M_BAD_JSON"],
    ["a one-time key that is a number", { one_time_keys: { "signed_curve25519:A": 5 } }, 400, "M_BAD_JSON"],
    ["a one-time key id without an algorithm", { one_time_keys: { nocolon: "k" } }, 400, "M_BAD_JSON"],
    ["a fallback key id with two colons", { fallback_keys: { "a:b:c": "k" } }, 400, "M_BAD_JSON"],
    [
      "a signed key without signatures",
      { one_time_keys: { "signed_curve25519:A": { key: "k" } } },
      400,
      "M_BAD_JSON",
    ],
  ])("answers %s with %i %s", async (_name, body, status, errcode) => {
    const { mock, alice } = await twoUsers(start);
    let payload: unknown = body;
    if (body === "missing-user-id") {
      const { user_id: _omitted, ...rest } = deviceKeysFor(alice);
      payload = { device_keys: rest };
    }

    const res = await alice.call("POST", "keys/upload", payload);

    expect(res).toMatchObject({ status, body: { errcode } });
    expect(mock.state.keys.deviceIdsWithKeys(alice.userId)).toEqual([]);
  });

  it("needs an access token", async () => {
    const { server } = await twoUsers(start);
    expect(await send(server, "POST", "keys/upload", { body: {} })).toMatchObject({
      status: 401,
      body: { errcode: "M_MISSING_TOKEN" },
    });
  });
});

describe.each(transports)("POST keys/query (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("returns another user's device keys as uploaded, with the display name in a rebuilt unsigned", async () => {
    const { alice, bob } = await twoUsers(start);
    await alice.call("PUT", `devices/${alice.deviceId}`, { display_name: "Alice's laptop" });
    const uploaded = { ...deviceKeysFor(alice), unsigned: { client_said: "this is dropped" } };
    await alice.call("POST", "keys/upload", { device_keys: uploaded });

    const res = await bob.call("POST", "keys/query", { device_keys: { [alice.userId]: [] } });

    const { unsigned: _dropped, ...asUploaded } = uploaded;
    expect(res).toEqual({
      status: 200,
      body: {
        device_keys: {
          [alice.userId]: {
            [alice.deviceId]: { ...asUploaded, unsigned: { device_display_name: "Alice's laptop" } },
          },
        },
        failures: {},
        master_keys: {},
        self_signing_keys: {},
        user_signing_keys: {},
      },
    });
  });

  it("returns only the devices asked for, and every device for an empty list", async () => {
    const { server, alice, bob } = await twoUsers(start);
    const second = await loginDevice(server, "alice");
    await alice.call("POST", "keys/upload", { device_keys: deviceKeysFor(alice) });
    await second.call("POST", "keys/upload", { device_keys: deviceKeysFor(second, "second") });

    const all = await bob.call("POST", "keys/query", { device_keys: { [alice.userId]: [] } });
    const one = await bob.call("POST", "keys/query", {
      device_keys: { [alice.userId]: [second.deviceId, "NOSUCHDEVICE"] },
    });

    expect(Object.keys(all.body.device_keys as object).length).toBe(1);
    expect(Object.keys((all.body.device_keys as Record<string, object>)[alice.userId]!).sort()).toEqual(
      [alice.deviceId, second.deviceId].sort(),
    );
    expect(Object.keys((one.body.device_keys as Record<string, object>)[alice.userId]!)).toEqual([
      second.deviceId,
    ]);
  });

  it("answers unknown local users with no devices, skips malformed ids and lists remote servers as failures", async () => {
    const { bob } = await twoUsers(start);

    const res = await bob.call("POST", "keys/query", {
      device_keys: { "@nobody:localhost": [], "not-a-user-id": [], "@carol:elsewhere.example": [] },
    });

    expect(res.body).toEqual({
      device_keys: { "@nobody:localhost": {} },
      failures: { "elsewhere.example": { status: 503, message: "Not ready for retry" } },
      master_keys: {},
      self_signing_keys: {},
      user_signing_keys: {},
    });
  });

  it.each([
    ["no device_keys", {}],
    ["device_keys that is a list", { device_keys: ["@alice:localhost"] }],
    ["a device list that is not a list", { device_keys: { "@alice:localhost": "DEVICE" } }],
    ["a device list with a number", { device_keys: { "@alice:localhost": [1] } }],
  ])("answers %s with 400 M_BAD_JSON, as Synapse checks it", async (_name, body) => {
    const { bob } = await twoUsers(start);
    expect(await bob.call("POST", "keys/query", body)).toMatchObject({
      status: 400,
      body: { errcode: "M_BAD_JSON" },
    });
  });

  it("answers a timeout that is not an integer with 400 M_INVALID_PARAM", async () => {
    const { bob } = await twoUsers(start);
    const res = await bob.call("POST", "keys/query?timeout=soon", { device_keys: {} });
    expect(res).toMatchObject({ status: 400, body: { errcode: "M_INVALID_PARAM" } });
  });
});

describe.each(transports)("POST keys/claim (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("claims one-time keys oldest first, then the fallback key again and again", async () => {
    const { mock, alice, bob } = await twoUsers(start);
    await alice.call("POST", "keys/upload", {
      one_time_keys: { "signed_curve25519:A": signedCurveKey(alice, "otk") },
      fallback_keys: { "signed_curve25519:F": signedCurveKey(alice, "fb", true) },
    });
    const claim = () =>
      bob.call("POST", "keys/claim", {
        one_time_keys: { [alice.userId]: { [alice.deviceId]: "signed_curve25519" } },
      });

    const first = await claim();
    expect(mock.state.keys.unusedFallbackKeyTypes(alice.userId, alice.deviceId)).toEqual([
      "signed_curve25519",
    ]);
    const second = await claim();
    const third = await claim();

    expect(first).toEqual({
      status: 200,
      body: {
        one_time_keys: {
          [alice.userId]: { [alice.deviceId]: { "signed_curve25519:A": signedCurveKey(alice, "otk") } },
        },
        failures: {},
      },
    });
    const fallback = { "signed_curve25519:F": signedCurveKey(alice, "fb", true) };
    expect(second.body.one_time_keys).toEqual({ [alice.userId]: { [alice.deviceId]: fallback } });
    expect(third.body).toEqual(second.body);
    expect(mock.state.keys.unusedFallbackKeyTypes(alice.userId, alice.deviceId)).toEqual([]);
    const counts = await alice.call("POST", "keys/upload", {});
    expect(counts.body).toEqual({ one_time_key_counts: { signed_curve25519: 0 } });
  });

  it("leaves out devices with no key and reports remote servers as failures", async () => {
    const { alice, bob } = await twoUsers(start);

    const res = await bob.call("POST", "keys/claim", {
      one_time_keys: {
        [alice.userId]: { [alice.deviceId]: "signed_curve25519", NOSUCH: "signed_curve25519" },
        "@carol:elsewhere.example": { DEV: "signed_curve25519" },
      },
    });

    expect(res.body).toEqual({
      one_time_keys: {},
      failures: { "elsewhere.example": { status: 503, message: "Not ready for retry" } },
    });
  });

  it("answers a malformed user id with 400 M_INVALID_PARAM without burning anyone's key", async () => {
    const { mock, alice, bob } = await twoUsers(start);
    await alice.call("POST", "keys/upload", {
      one_time_keys: { "signed_curve25519:A": signedCurveKey(alice, "k") },
    });

    const res = await bob.call("POST", "keys/claim", {
      one_time_keys: { [alice.userId]: { [alice.deviceId]: "signed_curve25519" }, "no-user": { D: "x" } },
    });

    expect(res).toMatchObject({ status: 400, body: { errcode: "M_INVALID_PARAM" } });
    expect(mock.state.keys.oneTimeKeyCounts(alice.userId, alice.deviceId)).toEqual({ signed_curve25519: 1 });
  });

  it.each([
    [
      "an algorithm that is a list",
      { one_time_keys: { "@alice:localhost": { DEV: ["signed_curve25519"] } } },
    ],
    ["one_time_keys that is a string", { one_time_keys: "all of them" }],
  ])("answers %s with 400 M_BAD_JSON", async (_name, body) => {
    const { bob } = await twoUsers(start);
    expect(await bob.call("POST", "keys/claim", body)).toMatchObject({
      status: 400,
      body: { errcode: "M_BAD_JSON" },
    });
  });

  it("treats a body without one_time_keys as asking for nothing, as Synapse does", async () => {
    const { bob } = await twoUsers(start);
    expect(await bob.call("POST", "keys/claim", {})).toEqual({
      status: 200,
      body: { one_time_keys: {}, failures: {} },
    });
  });
});

/** A `/sync` `next_batch`: what a client passes to `keys/changes` as `from`. */
async function syncToken(device: TestDevice): Promise<string> {
  return (await sync(device)).next_batch;
}

function changesSince(device: TestDevice, from: string, to?: string) {
  const query = `from=${encodeURIComponent(from)}${to === undefined ? "" : `&to=${encodeURIComponent(to)}`}`;
  return device.call("GET", `keys/changes?${query}`);
}

describe.each(transports)("GET keys/changes (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("lists the caller after their device keys change, and nothing from an up-to-date token", async () => {
    const { alice } = await twoUsers(start);
    const from = await syncToken(alice);

    await alice.call("POST", "keys/upload", { device_keys: deviceKeysFor(alice) });
    const to = await syncToken(alice);
    const changed = await changesSince(alice, from, to);
    const none = await changesSince(alice, to);

    expect(changed).toEqual({ status: 200, body: { changed: [alice.userId], left: [] } });
    expect(none).toEqual({ status: 200, body: { changed: [], left: [] } });
  });

  it("does not tell a user about another user they share no room with", async () => {
    const { alice, bob } = await twoUsers(start);
    const from = await syncToken(bob);
    await alice.call("POST", "keys/upload", { device_keys: deviceKeysFor(alice) });

    expect((await changesSince(bob, from)).body).toEqual({ changed: [], left: [] });
  });

  it("reports room members whose keys changed and newcomers as changed, and users sharing no room any more as left", async () => {
    const { server, alice, bob } = await twoUsers(start);
    const carol = await registerUser(server, "carol");
    const dave = await registerUser(server, "dave");
    const roomId = await sharedRoom(alice, bob, dave);
    const from = await syncToken(alice);

    await bob.call("POST", "keys/upload", { device_keys: deviceKeysFor(bob) });
    await invite(alice, roomId, carol);
    await leave(dave, roomId);
    const stranger = await registerUser(server, "erin");
    await stranger.call("POST", "keys/upload", { device_keys: deviceKeysFor(stranger) });

    expect(await changesSince(alice, from)).toEqual({
      status: 200,
      body: { changed: [bob.userId, carol.userId], left: [dave.userId] },
    });
  });

  it("answers what a /sync from the same token reports in device_lists", async () => {
    const { server, alice, bob } = await twoUsers(start);
    const carol = await registerUser(server, "carol");
    const roomId = await sharedRoom(alice, bob, carol);
    const from = await syncToken(alice);

    await loginDevice(server, "bob");
    await leave(carol, roomId);
    const changes = await changesSince(alice, from);
    const synced = await sync(alice, since(from));

    expect(changes.body).toEqual({ changed: [bob.userId], left: [carol.userId] });
    expect(synced.device_lists).toEqual(changes.body);
  });

  it("ignores to, as Synapse does, and reports changes after it too", async () => {
    const { alice, bob } = await twoUsers(start);
    await sharedRoom(alice, bob);
    const from = await syncToken(alice);

    await bob.call("POST", "keys/upload", { device_keys: deviceKeysFor(bob) });

    expect((await changesSince(alice, from, from)).body).toEqual({ changed: [bob.userId], left: [] });
  });

  it("does not acknowledge to-device messages, unlike a /sync from the same token", async () => {
    const { mock, alice } = await twoUsers(start);
    mock.state.toDevice.enqueue(alice.userId, alice.deviceId, {
      type: "m.test",
      sender: alice.userId,
      content: {},
    });
    const delivered = await syncToken(alice);

    await changesSince(alice, delivered);

    expect(mock.state.toDevice.pendingCount(alice.userId, alice.deviceId)).toBe(1);
  });

  it("answers a missing from with M_MISSING_PARAM", async () => {
    const { alice } = await twoUsers(start);
    expect(await alice.call("GET", "keys/changes")).toMatchObject({
      status: 400,
      body: { errcode: "M_MISSING_PARAM" },
    });
  });

  it.each([
    ["a token of another server's shape", "s72594_4483_1934"],
    ["a bare device-list position", "0"],
    ["a /messages token", "t1"],
    ["an empty token", ""],
    ["a sync token with a non-numeric part", "s0_0_x_0"],
  ])("answers %s with 400 M_UNKNOWN Invalid stream token, as Synapse does", async (_name, from) => {
    const { alice } = await twoUsers(start);
    expect(await changesSince(alice, from)).toEqual({
      status: 400,
      body: { errcode: "M_UNKNOWN", error: "Invalid stream token" },
    });
  });

  it("refuses a token ahead of the server, as from an earlier mock instance, like /sync does", async () => {
    const { alice } = await twoUsers(start);
    const now = await syncToken(alice);
    const ahead = now.replace(/^s(\d+)_/, (_m, rooms: string) => `s${Number(rooms) + 1}_`);

    expect(ahead).not.toBe(now);
    expect(await changesSince(alice, ahead)).toMatchObject({ status: 400, body: { errcode: "M_UNKNOWN" } });
  });
});

describe.each(transports)("device deletion (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("removes the device's keys from queries and claims and changes the device list", async () => {
    const { server, alice, bob } = await twoUsers(start);
    const second = await loginDevice(server, "alice");
    await second.call("POST", "keys/upload", {
      device_keys: deviceKeysFor(second),
      one_time_keys: { "signed_curve25519:A": signedCurveKey(second, "otk") },
      fallback_keys: { "signed_curve25519:F": signedCurveKey(second, "fb", true) },
    });
    const from = await syncToken(alice);

    const deleted = await alice.call("DELETE", `devices/${second.deviceId}`, {
      auth: { type: "m.login.dummy" },
    });
    const query = await bob.call("POST", "keys/query", { device_keys: { [alice.userId]: [] } });
    const claim = await bob.call("POST", "keys/claim", {
      one_time_keys: { [alice.userId]: { [second.deviceId]: "signed_curve25519" } },
    });

    expect(deleted.status).toBe(200);
    expect(query.body.device_keys).toEqual({ [alice.userId]: {} });
    expect(claim.body.one_time_keys).toEqual({});
    expect((await changesSince(alice, from)).body).toEqual({
      changed: [alice.userId],
      left: [],
    });
  });
});
