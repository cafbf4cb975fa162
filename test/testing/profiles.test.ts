import { describe, expect, it } from "vitest";
import {
  createMockHomeserver,
  type MockHomeserver,
  type Profile,
  type ProfileName,
  type ProfileOverrides,
  profiles,
  resolveProfile,
  startMockServer,
} from "../../src/testing/index.js";
import {
  expectedDehydrationFlags,
  expectedE2eeFlags,
  expectedScalarFlags,
  expectedVersions,
  type StructuredField,
} from "./support/expected-profiles.js";

/**
 * One test per profile flag, each asserting behaviour that changes when the flag is flipped; the
 * last test of "profiles" fails when a flag is added to `Profile` without a test here. After them,
 * each named profile's values, which must also be written out in support/expected-profiles.ts.
 */

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  body: Record<string, unknown>;
}

async function req(
  hs: MockHomeserver,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  const init: RequestInit = { method, headers };
  if (opts.body !== undefined)
    init.body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
  const res = await hs.fetch(path, init);
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

function server(overrides: ProfileOverrides = {}, profile: ProfileName = "synapse-1.157") {
  const hs = createMockHomeserver({ profile, overrides });
  const alice = hs.control.createUser("alice", { password: "pw" })!;
  return { hs, alice };
}

/** One sliding sync request with only the e2ee extension; `pos` continues the connection. */
const slidingE2ee = async (hs: MockHomeserver, token: string, pos?: string) => {
  const query = pos === undefined ? "" : `?pos=${pos}`;
  const res = await req(hs, "POST", `/_matrix/client/unstable/org.matrix.simplified_msc3575/sync${query}`, {
    token,
    body: { extensions: { e2ee: { enabled: true } } },
  });
  return { e2ee: (res.body.extensions as Record<string, unknown>).e2ee, pos: res.body.pos as string };
};

const covered = new Set<keyof Profile>(["name"]);
function flag(name: keyof Profile, fn: () => Promise<void>) {
  covered.add(name);
  it(`flag ${name} changes behaviour`, fn);
}

describe("profiles", () => {
  it("resolves overrides without changing the stored profile", () => {
    const p = resolveProfile("tuwunel", { deviceDisplayNameMaxLength: 5 });
    expect(p.name).toBe("tuwunel");
    expect(p.deviceDisplayNameMaxLength).toBe(5);
    expect(profiles.tuwunel.deviceDisplayNameMaxLength).toBeNull();
    expect(resolveProfile().name).toBe("synapse-1.157");
  });

  it("serves the chosen profile at /_mock/profile", async () => {
    const hs = createMockHomeserver({ profile: "msc" });
    expect((await req(hs, "GET", "/_mock/profile")).body.name).toBe("msc");
  });

  flag("versions", async () => {
    const syn = await req(server().hs, "GET", "/_matrix/client/versions");
    const tuw = await req(server({}, "tuwunel").hs, "GET", "/_matrix/client/versions");
    expect((syn.body.versions as string[]).at(-1)).toBe("v1.12");
    expect(tuw.body.versions).toContain("v1.19");
    const custom = await req(server({ versions: ["v1.99"] }).hs, "GET", "/_matrix/client/versions");
    expect(custom.body.versions).toEqual(["v1.99"]);
  });

  flag("unstableFeatures", async () => {
    const features = async (p: ProfileName) =>
      (await req(server({}, p).hs, "GET", "/_matrix/client/versions")).body.unstable_features as Record<
        string,
        boolean
      >;
    expect((await features("synapse-1.157"))["com.beeper.msc4446"]).toBe(false);
    expect(await features("synapse-1.156")).not.toHaveProperty("com.beeper.msc4446");
    expect((await features("tuwunel"))["org.matrix.msc3814"]).toBe(true);
    expect(await features("synapse-1.157")).not.toHaveProperty("org.matrix.msc3814");
    const off = await req(server({ unstableFeatures: {} }).hs, "GET", "/_matrix/client/versions");
    expect(off.body.unstable_features).toEqual({});
  });

  flag("capabilities", async () => {
    const { hs, alice } = server({ capabilities: { "m.change_password": { enabled: false } } });
    const res = await req(hs, "GET", "/_matrix/client/v3/capabilities", { token: alice.accessToken });
    expect(res.body).toEqual({ capabilities: { "m.change_password": { enabled: false } } });
    const t = server({}, "tuwunel");
    const tuw = await req(t.hs, "GET", "/_matrix/client/v3/capabilities", { token: t.alice.accessToken });
    expect(tuw.body.capabilities).toMatchObject({ "m.3pid_changes": { enabled: false } });
  });

  flag("cors", async () => {
    const running = await startMockServer({ profile: "tuwunel" });
    try {
      const res = await fetch(`${running.url}/_matrix/client/v3/keys/upload`, {
        method: "OPTIONS",
        headers: { Origin: "http://app.example", "Access-Control-Request-Method": "POST" },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-max-age")).toBe("86400");
      expect(res.headers.get("access-control-expose-headers")).toBe("etag");
    } finally {
      await running.close();
    }
    const syn = await req(server().hs, "OPTIONS", "/_matrix/client/versions");
    expect(syn.status).toBe(204);
    expect(syn.headers.get("access-control-max-age")).toBeNull();
    expect(syn.headers.get("access-control-expose-headers")).toBe("Synapse-Trace-Id, Server");
  });

  flag("maxRequestBodyBytes", async () => {
    const body = { blob: "x".repeat(600) };
    for (const [limit, status] of [
      [512, 413],
      [4096, 200],
    ] as const) {
      const { hs, alice } = server({ maxRequestBodyBytes: limit });
      const res = await req(hs, "PUT", `/_matrix/client/v3/user/${alice.userId}/account_data/x`, {
        token: alice.accessToken,
        body,
      });
      expect(res.status).toBe(status);
    }
  });

  flag("validationErrors", async () => {
    for (const [mode, errcode] of [
      ["synapse", "M_MISSING_PARAM"],
      ["ruma", "M_BAD_JSON"],
    ] as const) {
      const { hs, alice } = server({ validationErrors: mode });
      const res = await req(hs, "POST", "/_matrix/client/v3/delete_devices", {
        token: alice.accessToken,
        body: {},
      });
      expect(res.body.errcode).toBe(errcode);
    }
  });

  flag("emptyBodyIsEmptyObject", async () => {
    for (const [value, errcode] of [
      [false, "M_NOT_JSON"],
      [true, "M_MISSING_PARAM"],
    ] as const) {
      const { hs, alice } = server({ emptyBodyIsEmptyObject: value });
      const res = await req(hs, "POST", "/_matrix/client/v3/delete_devices", { token: alice.accessToken });
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe(errcode);
    }
  });

  flag("wrongMethodHasErrorBody", async () => {
    const withBody = await req(server().hs, "POST", "/_matrix/client/versions");
    expect(withBody.status).toBe(405);
    expect(withBody.body.errcode).toBe("M_UNRECOGNIZED");
    const bare = await req(server({ wrongMethodHasErrorBody: false }).hs, "POST", "/_matrix/client/versions");
    expect(bare.status).toBe(405);
    expect(bare.text).toBe("");
  });

  flag("unknownPathMessage", async () => {
    const res = await req(server({}, "tuwunel").hs, "GET", "/_matrix/client/v3/nope");
    expect(res.body).toEqual({ errcode: "M_UNRECOGNIZED", error: "Not Found" });
    const syn = await req(server().hs, "GET", "/_matrix/client/v3/nope");
    expect(syn.body.error).toBe("Unrecognized request");
  });

  flag("dummyAuthForUserVerification", async () => {
    for (const [value, status, flows] of [
      [true, 200, [{ stages: ["m.login.password"] }, { stages: ["m.login.dummy"] }]],
      [false, 400, [{ stages: ["m.login.password"] }]],
    ] as const) {
      const { hs, alice } = server({ dummyAuthForUserVerification: value });
      const path = `/_matrix/client/v3/devices/${alice.deviceId}`;
      const challenge = await req(hs, "DELETE", path, { token: alice.accessToken });
      expect(challenge.body.flows).toEqual(flows);
      const res = await req(hs, "DELETE", path, {
        token: alice.accessToken,
        body: { auth: { type: "m.login.dummy", session: challenge.body.session } },
      });
      expect(res.status).toBe(status);
      expect(hs.state.accounts.hasDevice(alice.userId, alice.deviceId)).toBe(!value);
    }
  });

  flag("loginReturnsHomeServer", async () => {
    for (const value of [true, false]) {
      const { hs } = server({ loginReturnsHomeServer: value });
      const res = await req(hs, "POST", "/_matrix/client/v3/login", {
        body: { type: "m.login.password", user: "alice", password: "pw" },
      });
      expect("home_server" in res.body).toBe(value);
    }
  });

  flag("deviceDisplayNameMaxLength", async () => {
    for (const [max, status] of [
      [100, 400],
      [null, 200],
    ] as const) {
      const { hs, alice } = server({ deviceDisplayNameMaxLength: max });
      const res = await req(hs, "PUT", `/_matrix/client/v3/devices/${alice.deviceId}`, {
        token: alice.accessToken,
        body: { display_name: "n".repeat(101) },
      });
      expect(res.status).toBe(status);
      if (status === 400) expect(res.body.errcode).toBe("M_TOO_LARGE");
    }
  });

  flag("nullDisplayNameClears", async () => {
    for (const [value, expected] of [
      [false, "old"],
      [true, null],
    ] as const) {
      const { hs, alice } = server({ nullDisplayNameClears: value });
      const path = `/_matrix/client/v3/devices/${alice.deviceId}`;
      await req(hs, "PUT", path, { token: alice.accessToken, body: { display_name: "old" } });
      await req(hs, "PUT", path, { token: alice.accessToken, body: { display_name: null } });
      expect((await req(hs, "GET", path, { token: alice.accessToken })).body.display_name).toBe(expected);
    }
  });

  flag("deviceIncludesUserId", async () => {
    for (const value of [true, false]) {
      const { hs, alice } = server({ deviceIncludesUserId: value });
      const res = await req(hs, "GET", "/_matrix/client/v3/devices", { token: alice.accessToken });
      expect("user_id" in (res.body.devices as object[])[0]!).toBe(value);
    }
  });

  flag("unknownDeviceMessage", async () => {
    for (const [profile, overrides, error] of [
      ["synapse-1.157", {}, "No device found"],
      ["tuwunel", {}, "Device not found."],
      ["synapse-1.157", { unknownDeviceMessage: "Gone" }, "Gone"],
    ] as const) {
      const { hs, alice } = server(overrides, profile);
      const res = await req(hs, "GET", "/_matrix/client/v3/devices/NOPE", { token: alice.accessToken });
      expect(res.body).toEqual({ errcode: "M_NOT_FOUND", error });
    }
  });

  flag("deviceRenameIsDeviceListChange", async () => {
    for (const value of [true, false]) {
      const { hs, alice } = server({ deviceRenameIsDeviceListChange: value });
      const token = alice.accessToken;
      const initial = await req(hs, "GET", "/_matrix/client/v3/sync", { token });
      // The same name again: Synapse still notifies.
      await req(hs, "PUT", `/_matrix/client/v3/devices/${alice.deviceId}`, { token, body: {} });
      const since = encodeURIComponent(initial.body.next_batch as string);
      const next = await req(hs, "GET", `/_matrix/client/v3/sync?since=${since}&timeout=0`, { token });
      expect([value, next.body.device_lists]).toEqual([
        value,
        value ? { changed: [alice.userId] } : undefined,
      ]);
    }
  });

  flag("emptyAccountDataIsDeleted", async () => {
    for (const [value, status] of [
      [false, 200],
      [true, 404],
    ] as const) {
      const { hs, alice } = server({ emptyAccountDataIsDeleted: value });
      const path = `/_matrix/client/v3/user/${alice.userId}/account_data/m.secret_storage.default_key`;
      await req(hs, "PUT", path, { token: alice.accessToken, body: { key: "K" } });
      await req(hs, "PUT", path, { token: alice.accessToken, body: {} });
      expect((await req(hs, "GET", path, { token: alice.accessToken })).status).toBe(status);
    }
  });

  flag("reservedAccountDataStatus", async () => {
    for (const [profile, overrides, status] of [
      ["synapse-1.157", {}, 405],
      ["tuwunel", {}, 400],
      ["synapse-1.157", { reservedAccountDataStatus: 400 }, 400],
    ] as const) {
      const { hs, alice } = server(overrides, profile);
      const path = `/_matrix/client/v3/user/${alice.userId}/account_data/m.push_rules`;
      const res = await req(hs, "PUT", path, { token: alice.accessToken, body: {} });
      expect(res.status).toBe(status);
      expect(res.body.errcode).toBe("M_BAD_JSON");
    }
  });

  flag("noBackupMessage", async () => {
    for (const [profile, overrides, error] of [
      ["synapse-1.157", {}, "No backup found"],
      ["tuwunel", {}, "Key backup does not exist."],
      ["synapse-1.157", { noBackupMessage: "None" }, "None"],
    ] as const) {
      const { hs, alice } = server(overrides, profile);
      const res = await req(hs, "GET", "/_matrix/client/v3/room_keys/version", { token: alice.accessToken });
      expect(res.body).toEqual({ errcode: "M_NOT_FOUND", error });
    }
  });

  flag("seedSignedCurve25519Count", async () => {
    for (const [value, counts] of [
      [true, { signed_curve25519: 0 }],
      [false, {}],
    ] as const) {
      const { hs, alice } = server({ seedSignedCurve25519Count: value });
      const res = await req(hs, "POST", "/_matrix/client/v3/keys/upload", {
        token: alice.accessToken,
        body: {},
      });
      expect(res.body.one_time_key_counts).toEqual(counts);
    }
  });

  flag("deviceKeysMismatchErrcode", async () => {
    for (const errcode of ["M_BAD_JSON", "M_UNKNOWN"] as const) {
      const { hs, alice } = server({ deviceKeysMismatchErrcode: errcode });
      const deviceKeys = {
        algorithms: [],
        device_id: alice.deviceId,
        keys: {},
        signatures: {},
        user_id: "@eve:localhost",
      };
      const res = await req(hs, "POST", "/_matrix/client/v3/keys/upload", {
        token: alice.accessToken,
        body: { device_keys: deviceKeys },
      });
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe(errcode);
    }
  });

  flag("oneTimeKeyConflict", async () => {
    for (const [mode, status] of [
      ["reject", 400],
      ["keep-existing", 200],
    ] as const) {
      const { hs, alice } = server({ oneTimeKeyConflict: mode });
      const upload = (key: string) =>
        req(hs, "POST", "/_matrix/client/v3/keys/upload", {
          token: alice.accessToken,
          body: { one_time_keys: { "signed_curve25519:AAAA": { key, signatures: {} } } },
        });
      expect((await upload("first")).status).toBe(200);
      expect((await upload("second")).status).toBe(status);
    }
  });

  // Simulated federation (more cases in test/testing/federation.test.ts).
  flag("remoteDeviceLists", async () => {
    const observe = async (mode: Profile["remoteDeviceLists"]) => {
      const hs = createMockHomeserver({ overrides: { remoteDeviceLists: mode } });
      hs.control.addRemoteServer("remote.example");
      const alice = hs.control.createUser("alice")!;
      const dave = hs.control.createUser("dave", { server: "remote.example", deviceId: "D1" })!;
      const as = (who: { accessToken: string }) => (method: string, path: string, body?: unknown) =>
        req(hs, method, `/_matrix/client/v3/${path}`, { token: who.accessToken, body });
      const room = (await as(alice)("POST", "createRoom", { invite: [dave.userId] })).body.room_id as string;
      await as(dave)("POST", `join/${encodeURIComponent(room)}`, {});
      const keysOf = (deviceId: string) => ({
        user_id: dave.userId,
        device_id: deviceId,
        algorithms: [],
        keys: { [`ed25519:${deviceId}`]: `${deviceId}-ed` },
        signatures: {},
      });
      await as(dave)("POST", "keys/upload", { device_keys: keysOf("D1") });
      hs.control.loseDeviceListUpdates(dave.userId, true);
      const d2 = await req(hs, "POST", "/_matrix/client/v3/login", {
        body: {
          type: "m.login.password",
          identifier: { type: "m.id.user", user: dave.userId },
          password: "password",
          device_id: "D2",
        },
      });
      await as({ accessToken: d2.body.access_token as string })("POST", "keys/upload", {
        device_keys: keysOf("D2"),
      });
      const query = async () => {
        const body = (await as(alice)("POST", "keys/query", { device_keys: { [dave.userId]: [] } })).body;
        const devices = (body.device_keys as Record<string, Record<string, unknown>>)[dave.userId];
        return {
          devices: devices ? Object.keys(devices).sort() : null,
          failures: Object.keys(body.failures as object),
        };
      };
      const before = await query();
      hs.control.setRemoteServerReachable("remote.example", false);
      hs.control.resyncRemoteUser(dave.userId);
      return { before, afterFailedResync: await query() };
    };
    const failed = ["remote.example"];
    expect(await observe("synapse")).toEqual({
      before: { devices: ["D1"], failures: [] },
      afterFailedResync: { devices: null, failures: failed },
    });
    expect(await observe("msc")).toEqual({
      before: { devices: ["D1"], failures: [] },
      afterFailedResync: { devices: ["D1"], failures: failed },
    });
    expect(await observe("federation")).toEqual({
      before: { devices: ["D1", "D2"], failures: [] },
      afterFailedResync: { devices: null, failures: failed },
    });
  });

  flag("deviceListRefresh", async () => {
    for (const [value, status, errcode] of [
      [true, 202, undefined],
      [false, 404, "M_UNRECOGNIZED"],
    ] as const) {
      const { hs, alice } = server({ deviceListRefresh: value });
      const res = await req(
        hs,
        "POST",
        `/_matrix/client/v3/user/${encodeURIComponent(alice.userId)}/devices/refresh`,
        {
          token: alice.accessToken,
          body: {},
        },
      );
      expect([res.status, res.body.errcode]).toEqual([status, errcode]);
    }
  });

  // Simplified sliding sync e2ee extension (more cases in test/testing/routes/sliding-sync-e2ee.test.ts).
  flag("slidingE2eeKeyFields", async () => {
    for (const [value, keyFieldsRepeated] of [
      ["always", true],
      ["when-changed", false],
    ] as const) {
      const { hs, alice } = server({ slidingE2eeKeyFields: value });
      const first = await slidingE2ee(hs, alice.accessToken);
      const second = await slidingE2ee(hs, alice.accessToken, first.pos);
      expect(first.e2ee).toHaveProperty("device_one_time_keys_count");
      expect(Object.hasOwn(second.e2ee as object, "device_one_time_keys_count")).toBe(keyFieldsRepeated);
    }
  });

  flag("slidingE2eeDeviceLists", async () => {
    for (const [value, sentWhenEmpty] of [
      ["when-pos", true],
      ["when-nonempty", false],
    ] as const) {
      const { hs, alice } = server({ slidingE2eeDeviceLists: value });
      const first = await slidingE2ee(hs, alice.accessToken);
      const second = await slidingE2ee(hs, alice.accessToken, first.pos);
      expect(first.e2ee).not.toHaveProperty("device_lists");
      expect(Object.hasOwn(second.e2ee as object, "device_lists")).toBe(sentWhenEmpty);
    }
  });

  flag("slidingOmitZeroKeyCounts", async () => {
    for (const [value, e2ee] of [
      [false, { device_one_time_keys_count: { signed_curve25519: 0 }, device_unused_fallback_key_types: [] }],
      [true, { device_unused_fallback_key_types: [] }],
    ] as const) {
      const { hs, alice } = server({ slidingOmitZeroKeyCounts: value });
      expect((await slidingE2ee(hs, alice.accessToken)).e2ee).toEqual(e2ee);
    }
  });

  flag("slidingSendsFallbackKeyTypes", async () => {
    for (const value of [true, false]) {
      const { hs, alice } = server({ slidingSendsFallbackKeyTypes: value });
      const { e2ee } = await slidingE2ee(hs, alice.accessToken);
      expect([value, Object.hasOwn(e2ee as object, "device_unused_fallback_key_types")]).toEqual([
        value,
        value,
      ]);
    }
  });

  flag("slidingOmitEmptyE2ee", async () => {
    // Nothing to say: zero counts left out, no fallback field, no device lists without `pos`.
    const empty = { slidingOmitZeroKeyCounts: true, slidingSendsFallbackKeyTypes: false };
    for (const [value, e2ee] of [
      [false, {}],
      [true, undefined],
    ] as const) {
      const { hs, alice } = server({ ...empty, slidingOmitEmptyE2ee: value });
      expect((await slidingE2ee(hs, alice.accessToken)).e2ee).toEqual(e2ee);
    }
  });

  // Simplified sliding sync to_device extension (more cases in
  // test/testing/routes/sliding-sync-to-device.test.ts).
  const slidingToDevice = async (
    hs: MockHomeserver,
    token: string,
    options: { pos?: string; since?: string; limit?: number } = {},
  ) => {
    const query = options.pos === undefined ? "" : `?pos=${options.pos}`;
    const { pos: _pos, ...ext } = options;
    const res = await req(hs, "POST", `/_matrix/client/unstable/org.matrix.simplified_msc3575/sync${query}`, {
      token,
      body: { extensions: { to_device: { enabled: true, ...ext } } },
    });
    const toDevice = (res.body.extensions as Record<string, unknown>).to_device as
      | { next_batch: string; events?: { content: { n: number } }[] }
      | undefined;
    return { toDevice, numbers: toDevice?.events?.map((e) => e.content.n), pos: res.body.pos as string };
  };
  const queueFor = (hs: MockHomeserver, user: { userId: string; deviceId: string }, ...numbers: number[]) => {
    for (const n of numbers) {
      hs.state.toDevice.enqueue(user.userId, user.deviceId, {
        type: "m.test",
        sender: user.userId,
        content: { n },
      });
    }
  };

  flag("slidingToDeviceSince", async () => {
    for (const [value, afterPosWithoutSince, afterPosWithSinceZero] of [
      ["since", [1], [1]],
      ["since-else-pos", [], [1]],
      ["pos", [], []],
    ] as const) {
      const observed: (number[] | undefined)[] = [];
      for (const since of [undefined, "0"]) {
        const { hs, alice } = server({ slidingToDeviceSince: value });
        queueFor(hs, alice, 1);
        const first = await slidingToDevice(hs, alice.accessToken);
        expect(first.numbers).toEqual([1]);
        const again = await slidingToDevice(hs, alice.accessToken, {
          pos: first.pos,
          ...(since !== undefined ? { since } : {}),
        });
        observed.push(again.numbers);
      }
      expect([value, ...observed]).toEqual([value, afterPosWithoutSince, afterPosWithSinceZero]);
    }
  });

  flag("slidingToDeviceIgnoresLimit", async () => {
    for (const [value, numbers] of [
      [false, [1]],
      [true, [1, 2, 3]],
    ] as const) {
      const { hs, alice } = server({ slidingToDeviceIgnoresLimit: value });
      queueFor(hs, alice, 1, 2, 3);
      expect((await slidingToDevice(hs, alice.accessToken, { limit: 1 })).numbers).toEqual(numbers);
    }
  });

  flag("slidingToDeviceWhenEmpty", async () => {
    const nextBatch = expect.stringMatching(/^\d+$/);
    for (const [value, wire] of [
      ["empty-events", { next_batch: nextBatch, events: [] }],
      ["omit-extension", undefined],
      ["omit-events", { next_batch: nextBatch }],
    ] as const) {
      const { hs, alice } = server({ slidingToDeviceWhenEmpty: value });
      expect([value, (await slidingToDevice(hs, alice.accessToken)).toDevice]).toEqual([value, wire]);
    }
  });

  flag("toDeviceLimitZeroJumpsToHead", async () => {
    for (const [value, nextBatch, delivered] of [
      [true, "2", []],
      [false, "0", [1, 2]],
    ] as const) {
      const { hs, alice } = server({ toDeviceLimitZeroJumpsToHead: value });
      queueFor(hs, alice, 1, 2);
      const zero = await slidingToDevice(hs, alice.accessToken, { limit: 0 });
      const next = await slidingToDevice(hs, alice.accessToken, { since: zero.toDevice!.next_batch });
      expect([value, zero.toDevice, next.numbers]).toEqual([
        value,
        { next_batch: nextBatch, events: [] },
        delivered,
      ]);
    }
  });

  // --- MSC3814 dehydrated devices (flags in src/testing/dehydration-flags.ts) ---
  const DEHYDRATED = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device";
  /** Alice with a dehydrated device `DEHY` holding `messages` to-device messages. */
  const dehydration = (overrides: ProfileOverrides, messages = 0) => {
    const { hs, alice } = server(overrides);
    hs.control.injectDehydratedDevice(alice.userId, { deviceId: "DEHY", deviceData: { algorithm: "a" } });
    for (let n = 1; n <= messages; n++) {
      hs.state.toDevice.enqueue(alice.userId, "DEHY", {
        type: "m.room.encrypted",
        sender: alice.userId,
        content: { n },
      });
    }
    const events = (method: "GET" | "POST", query = "", body?: unknown) =>
      req(hs, method, `${DEHYDRATED}/DEHY/events${query}`, {
        token: alice.accessToken,
        ...(method === "POST" ? { body: body ?? {} } : {}),
      });
    return { hs, alice, events };
  };
  const count = (r: Reply) => (r.body.events as unknown[]).length;

  flag("dehydratedDevices", async () => {
    for (const [value, errcode] of [
      [true, "M_NOT_FOUND"],
      [false, "M_UNRECOGNIZED"],
    ] as const) {
      const { hs, alice } = server({ dehydratedDevices: value });
      const res = await req(hs, "GET", DEHYDRATED, { token: alice.accessToken });
      expect([res.status, res.body.errcode]).toEqual([404, errcode]);
    }
  });

  flag("dehydratedEventsGet", async () => {
    expect((await dehydration({ dehydratedEventsGet: true }).events("GET")).status).toBe(200);
    expect((await dehydration({ dehydratedEventsGet: false }).events("GET")).status).toBe(405);
  });

  flag("dehydratedEventsPost", async () => {
    expect((await dehydration({ dehydratedEventsPost: true }).events("POST")).status).toBe(200);
    expect((await dehydration({ dehydratedEventsPost: false }).events("POST")).status).toBe(405);
  });

  flag("dehydratedEventsPageSize", async () => {
    expect(count(await dehydration({ dehydratedEventsPageSize: 3 }, 10).events("GET"))).toBe(3);
    expect(count(await dehydration({ dehydratedEventsPageSize: 5 }, 10).events("GET"))).toBe(5);
  });

  flag("dehydratedEventsLimitParam", async () => {
    expect(count(await dehydration({ dehydratedEventsLimitParam: true }, 5).events("GET", "?limit=2"))).toBe(
      2,
    );
    expect(count(await dehydration({ dehydratedEventsLimitParam: false }, 5).events("GET", "?limit=2"))).toBe(
      5,
    );
  });

  flag("dehydratedEventsToken", async () => {
    const d = await dehydration({ dehydratedEventsToken: "d-prefixed" }, 5).events("GET", "?limit=2");
    const decimal = await dehydration({ dehydratedEventsToken: "decimal" }, 5).events("GET", "?limit=2");
    expect(d.body.next_batch).toMatch(/^d\d+$/);
    expect(decimal.body.next_batch).toMatch(/^\d+$/);
  });

  flag("dehydratedGetNextBatch", async () => {
    // The second page of two-message pages over 4 messages, alone or followed by another device's.
    for (const [value, alone, followed] of [
      ["synapse", false, true],
      ["if-full", true, true],
      ["if-more", false, false],
    ] as const) {
      for (const [other, expected] of [
        [false, alone],
        [true, followed],
      ] as const) {
        const { hs, alice, events } = dehydration({ dehydratedGetNextBatch: value }, 4);
        if (other)
          hs.state.toDevice.enqueue(alice.userId, alice.deviceId, {
            type: "x",
            sender: alice.userId,
            content: {},
          });
        const first = await events("GET", "?limit=2");
        const second = await events("GET", `?limit=2&from=${first.body.next_batch}`);
        expect([value, other, count(second), Object.hasOwn(second.body, "next_batch")]).toEqual([
          value,
          other,
          2,
          expected,
        ]);
      }
    }
  });

  flag("dehydratedPostNextBatch", async () => {
    expect((await dehydration({ dehydratedPostNextBatch: "always" }).events("POST")).body).toEqual({
      events: [],
      next_batch: expect.stringMatching(/^d\d+$/),
    });
    expect((await dehydration({ dehydratedPostNextBatch: "unless-empty" }).events("POST")).body).toEqual({
      events: [],
    });
  });

  flag("dehydratedPutRules", async () => {
    const put = (hs: MockHomeserver, token: string, body: Record<string, unknown>) =>
      req(hs, "PUT", DEHYDRATED, { token, body });
    const valid = {
      device_id: "NEW",
      device_data: { algorithm: "a" },
      initial_device_display_name: null,
      device_keys: {},
    };
    for (const [value, noKeys, noAlgorithm, previousKept] of [
      ["synapse", "M_UNKNOWN", "M_MISSING_PARAM", false],
      ["msc", "M_MISSING_PARAM", "M_MISSING_PARAM", true],
      ["ruma", "M_MISSING_PARAM", undefined, true],
    ] as const) {
      const { hs, alice } = dehydration({ dehydratedPutRules: value });
      const { device_keys: _omitted, ...withoutKeys } = valid;
      const a = await put(hs, alice.accessToken, withoutKeys);
      const kept = hs.control.dehydratedDevice(alice.userId) !== undefined;
      const b = await put(hs, alice.accessToken, { ...valid, device_data: {} });
      expect([value, a.body.errcode, kept, b.body.errcode]).toEqual([
        value,
        noKeys,
        previousKept,
        noAlgorithm,
      ]);
    }
  });

  it("has a test above for every flag of every profile", () => {
    for (const p of Object.values(profiles)) {
      expect(Object.keys(p).sort()).toEqual([...covered].sort());
    }
  });
});

/**
 * The flag tests above flip flags with overrides, so they hold whatever value a profile has. These
 * pin the values themselves, written out in support/expected-profiles.ts from the servers each
 * profile models, and check the most important ones through the HTTP surface of each named
 * profile, with no overrides.
 */
describe("each profile holds the values of the server it models", () => {
  const names = Object.keys(expectedScalarFlags) as ProfileName[];

  it("lists the five profiles", () => {
    expect(Object.keys(profiles).sort()).toEqual([...names].sort());
  });

  it.each(names)("%s: every plain flag, and no field left unchecked", (name) => {
    const expected = {
      ...expectedScalarFlags[name],
      ...expectedE2eeFlags[name],
      ...expectedDehydrationFlags[name],
    };
    const structured: StructuredField[] = ["name", "versions", "unstableFeatures", "capabilities", "cors"];

    expect(profiles[name]).toMatchObject({ name, ...expected });
    expect(Object.keys(profiles[name]).sort()).toEqual([...Object.keys(expected), ...structured].sort());
  });

  it.each(names)("%s: versions", (name) => {
    expect(profiles[name].versions).toEqual(expectedVersions[name]);
  });

  it("advertises in unstable_features what each server advertises", () => {
    const keys = [
      "org.matrix.e2e_cross_signing",
      "org.matrix.msc3814",
      "org.matrix.simplified_msc3575",
      "org.matrix.msc3391",
      "com.beeper.msc4446",
      "org.matrix.msc2638",
    ];
    const advertised = Object.fromEntries(
      names.map((n) => [n, keys.map((k) => profiles[n].unstableFeatures[k] ?? "absent")]),
    );

    expect(advertised).toEqual({
      // Synapse with a default config: MSC3814 and MSC3391 are experimental, so not advertised on.
      "synapse-1.157": [true, "absent", true, false, false, "absent"],
      "synapse-1.156": [true, "absent", true, false, "absent", "absent"],
      tuwunel: [true, true, true, "absent", "absent", "absent"],
      // continuwuity advertises neither cross-signing nor MSC3814, though it serves both.
      continuwuity: ["absent", "absent", true, "absent", "absent", "absent"],
      // MSC2638 is served by no server; the msc profile serves it and advertises it.
      msc: [true, true, true, true, "absent", true],
    });
    expect(Object.values(profiles.tuwunel.unstableFeatures).every((v) => v === true)).toBe(true);
    expect(Object.keys(profiles.continuwuity.unstableFeatures).sort()).toEqual([
      "computer.gingershaped.msc4466",
      "org.matrix.msc4155",
      "org.matrix.simplified_msc3575",
      "uk.half-shot.msc2666.query_mutual_rooms",
      "uk.half-shot.msc2666.query_mutual_rooms.stable",
    ]);
    expect(Object.keys(profiles.msc.unstableFeatures)).toHaveLength(5);
    const { "com.beeper.msc4446": _added, ...older } = profiles["synapse-1.157"].unstableFeatures;
    expect(older).toEqual(profiles["synapse-1.156"].unstableFeatures);
  });

  it("offers the room versions each server offers, with its default", () => {
    const roomVersions = (name: ProfileName) => {
      const { default: byDefault, available } = profiles[name].capabilities["m.room_versions"] as {
        default: string;
        available: Record<string, string>;
      };
      const having = (stability: string) =>
        Object.keys(available).filter((v) => available[v] === stability && /^\d+$/.test(v));
      const unstablePrefixed = Object.keys(available).filter((v) => !/^\d+$/.test(v)).length;
      return { byDefault, stable: having("stable"), unstable: having("unstable"), unstablePrefixed };
    };
    const oneToTwelve = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"];

    expect(Object.fromEntries(names.map((n) => [n, roomVersions(n)]))).toEqual({
      "synapse-1.157": { byDefault: "10", stable: oneToTwelve, unstable: [], unstablePrefixed: 6 },
      "synapse-1.156": { byDefault: "10", stable: oneToTwelve, unstable: [], unstablePrefixed: 6 },
      tuwunel: {
        byDefault: "11",
        stable: ["6", "7", "8", "9", "10", "11", "12"],
        unstable: ["3", "4", "5"],
        unstablePrefixed: 0,
      },
      // Assumed to be tuwunel's.
      continuwuity: {
        byDefault: "11",
        stable: ["6", "7", "8", "9", "10", "11", "12"],
        unstable: ["3", "4", "5"],
        unstablePrefixed: 0,
      },
      msc: { byDefault: "11", stable: oneToTwelve, unstable: [], unstablePrefixed: 0 },
    });
  });

  it("answers CORS preflights as each server's framework does", () => {
    const synapse = {
      preflightStatus: 204,
      allowMethods: "GET, HEAD, POST, PUT, DELETE, OPTIONS",
      allowHeaders: "X-Requested-With, Content-Type, Authorization, Date",
      exposeHeaders: "Synapse-Trace-Id, Server",
      maxAgeSeconds: null,
    };
    const towerHttp = {
      preflightStatus: 200,
      allowMethods: "DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT",
      allowHeaders: "accept,authorization,content-type,if-match,if-none-match,origin,x-requested-with",
      exposeHeaders: "etag",
      maxAgeSeconds: 86_400,
    };
    expect(Object.fromEntries(names.map((n) => [n, profiles[n].cors]))).toEqual({
      "synapse-1.157": synapse,
      "synapse-1.156": synapse,
      tuwunel: towerHttp,
      // Assumed to be tuwunel's.
      continuwuity: towerHttp,
      msc: synapse,
    });
  });

  /** What a client sees from a named profile for the flags that decide key handling. */
  async function observe(name: ProfileName) {
    const { hs, alice } = server({}, name);
    const token = alice.accessToken;
    const versions = await req(hs, "GET", "/_matrix/client/versions");
    const wrongMethod = await req(hs, "POST", "/_matrix/client/versions");
    const preflight = await req(hs, "OPTIONS", "/_matrix/client/v3/keys/upload");
    // Sliding sync first, while the device has no one-time keys.
    const firstSlide = await slidingE2ee(hs, token);
    const secondSlide = await slidingE2ee(hs, token, firstSlide.pos);
    const upload = (body: unknown) => req(hs, "POST", "/_matrix/client/v3/keys/upload", { token, body });
    const emptyUpload = await upload({});
    const foreignKeys = await upload({
      device_keys: { algorithms: [], device_id: alice.deviceId, keys: {}, signatures: {}, user_id: "@eve:x" },
    });
    const oneTimeKey = (key: string) =>
      upload({ one_time_keys: { "signed_curve25519:AAAA": { key, signatures: {} } } });
    await oneTimeKey("first");
    const conflicting = await oneTimeKey("second");
    const secretStorageKey = `/_matrix/client/v3/user/${alice.userId}/account_data/m.secret_storage.default_key`;
    await req(hs, "PUT", secretStorageKey, { token, body: { key: "K" } });
    await req(hs, "PUT", secretStorageKey, { token, body: {} });
    const afterEmptied = await req(hs, "GET", secretStorageKey, { token });
    return {
      lastVersion: (versions.body.versions as string[]).at(-1),
      wrongMethod: [wrongMethod.status, wrongMethod.body.errcode],
      preflight: preflight.status,
      slidingE2ee: [firstSlide.e2ee, secondSlide.e2ee],
      oneTimeKeyCounts: emptyUpload.body.one_time_key_counts,
      foreignDeviceKeys: [foreignKeys.status, foreignKeys.body.errcode],
      conflictingOneTimeKey: conflicting.status,
      emptiedAccountData: afterEmptied.status,
    };
  }

  it("behaves so over HTTP, without overrides", async () => {
    const noKeys = {
      device_one_time_keys_count: { signed_curve25519: 0 },
      device_unused_fallback_key_types: [],
    };
    const synapse = {
      lastVersion: "v1.12",
      wrongMethod: [405, "M_UNRECOGNIZED"],
      preflight: 204,
      // Key fields in every response; device_lists, even empty, once the request has a pos.
      slidingE2ee: [noKeys, { ...noKeys, device_lists: { changed: [], left: [] } }],
      oneTimeKeyCounts: { signed_curve25519: 0 },
      foreignDeviceKeys: [400, "M_BAD_JSON"],
      conflictingOneTimeKey: 400,
      emptiedAccountData: 200,
    };
    const observed = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await observe(n)])));

    expect(observed).toEqual({
      "synapse-1.157": synapse,
      "synapse-1.156": synapse,
      tuwunel: {
        lastVersion: "v1.19",
        wrongMethod: [405, "M_UNRECOGNIZED"],
        preflight: 200,
        // Zero counts left out, and the count field with them; no empty device_lists.
        slidingE2ee: [{ device_unused_fallback_key_types: [] }, { device_unused_fallback_key_types: [] }],
        oneTimeKeyCounts: { signed_curve25519: 0 },
        foreignDeviceKeys: [400, "M_UNKNOWN"],
        conflictingOneTimeKey: 200,
        emptiedAccountData: 404,
      },
      continuwuity: {
        lastVersion: "v1.18",
        wrongMethod: [405, "M_UNRECOGNIZED"],
        preflight: 200,
        // No count (none seeded), no fallback field, no device lists: ruma leaves e2ee out.
        slidingE2ee: [undefined, undefined],
        oneTimeKeyCounts: {},
        foreignDeviceKeys: [400, "M_UNKNOWN"],
        conflictingOneTimeKey: 200,
        emptiedAccountData: 404,
      },
      msc: {
        lastVersion: "v1.17",
        wrongMethod: [405, "M_UNRECOGNIZED"],
        preflight: 204,
        // MSC3884 deltas: everything first, then only what changed (nothing).
        slidingE2ee: [{ device_one_time_keys_count: {}, device_unused_fallback_key_types: [] }, {}],
        oneTimeKeyCounts: {},
        foreignDeviceKeys: [400, "M_BAD_JSON"],
        conflictingOneTimeKey: 400,
        emptiedAccountData: 404,
      },
    });
  });
});
