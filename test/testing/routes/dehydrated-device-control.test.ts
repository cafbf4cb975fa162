import { afterEach, describe, expect, it } from "vitest";
import type { ProfileName } from "../../../src/testing/index.js";
import {
  call,
  type Harness,
  harnessesOn,
  type StartHarness,
  startHarness,
  transports,
} from "../support/transports.js";
import {
  dehydrated,
  dehydratedDeviceId,
  enqueueMessages,
  eventsPath,
  numbers,
  putBody,
} from "./dehydrated-device-helpers.js";
import { registerUser } from "./e2ee-test-users.js";

async function setup(start: StartHarness, profile: ProfileName = "synapse-1.157") {
  const server = await start({ profile });
  const mock = server.homeserver;
  const alice = await registerUser(server, "alice");
  const bob = await registerUser(server, "bob");
  return { server, mock, alice, bob };
}

const FOREIGN_KEYS = (userId: string, deviceId: string) => ({
  user_id: userId,
  device_id: deviceId,
  algorithms: ["m.olm.v1.curve25519-aes-sha2"],
  keys: { [`curve25519:${deviceId}`]: "not-the-device-id", [`ed25519:${deviceId}`]: "ed" },
  signatures: { "@mallory:localhost": { "ed25519:EVIL": "sig" } },
});

describe.each(transports)("MockControl.injectDehydratedDevice (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("installs any device as given, with none of the checks PUT makes", async () => {
    const { server, mock, alice, bob } = await setup(start);
    const deviceKeys = FOREIGN_KEYS(bob.userId, "INJECTED");

    const record = mock.control.injectDehydratedDevice(bob.userId, {
      deviceId: "INJECTED",
      deviceData: { algorithm: "m.hostile", blob: 1 },
      deviceKeys,
      oneTimeKeys: { "signed_curve25519:X": { key: "k", signatures: {} } },
    });

    expect(record).toEqual({ deviceId: "INJECTED", deviceData: { algorithm: "m.hostile", blob: 1 } });
    const got = await dehydrated(server, bob, "GET");
    expect(got.body).toEqual({ device_id: "INJECTED", device_data: { algorithm: "m.hostile", blob: 1 } });
    const query = await alice.call("POST", "keys/query", { device_keys: { [bob.userId]: ["INJECTED"] } });
    const shown = (query.body.device_keys as Record<string, Record<string, Record<string, unknown>>>)[
      bob.userId
    ]!.INJECTED!;
    expect(shown.keys).toEqual(deviceKeys.keys);
    expect(shown.dehydrated).toBeUndefined();
    const claim = await alice.call("POST", "keys/claim", {
      one_time_keys: { [bob.userId]: { INJECTED: "signed_curve25519" } },
    });
    expect(JSON.stringify(claim.body.one_time_keys)).toContain("signed_curve25519:X");
  });

  it("replaces the previous dehydrated device, deleting it", async () => {
    const { server, mock, bob } = await setup(start);
    const uploaded = dehydratedDeviceId("real");
    await dehydrated(server, bob, "PUT", "", putBody(bob, uploaded));

    mock.control.injectDehydratedDevice(bob.userId, { deviceId: "OTHER", deviceData: {} });

    const devices = await bob.call("GET", "devices");
    expect((devices.body.devices as { device_id: string }[]).map((d) => d.device_id)).toEqual([
      bob.deviceId,
      "OTHER",
    ]);
    expect(mock.control.dehydratedDevice(bob.userId)?.deviceId).toBe("OTHER");
  });

  it("can claim one of the user's ordinary devices as the dehydrated one", async () => {
    const { server, mock, bob } = await setup(start);

    mock.control.injectDehydratedDevice(bob.userId, { deviceId: bob.deviceId, deviceData: {} });

    expect((await dehydrated(server, bob, "GET")).body.device_id).toBe(bob.deviceId);
  });

  it("throws RangeError for an unknown user", async () => {
    const { mock } = await setup(start);

    expect(() =>
      mock.control.injectDehydratedDevice("@nobody:localhost", { deviceId: "D", deviceData: {} }),
    ).toThrow(RangeError);
  });
});

describe.each(transports)("scripted …/events faults (%s)", (transport) => {
  const start = harnessesOn(transport);

  async function withMessages(profile: ProfileName, count: number) {
    const s = await setup(start, profile);
    const deviceId = dehydratedDeviceId("faulty");
    await dehydrated(s.server, s.bob, "PUT", "", putBody(s.bob, deviceId));
    enqueueMessages(s.mock, s.alice.userId, { userId: s.bob.userId, deviceId }, count);
    return { ...s, deviceId };
  }

  it("repeat-cursor: after the correct pages, the same next_batch comes back for ever (GET)", async () => {
    const s = await withMessages("synapse-1.157", 30);
    s.mock.control.setDehydratedEventsFault({ kind: "repeat-cursor", afterPages: 1 });

    const first = await dehydrated(s.server, s.bob, "GET", eventsPath(s.deviceId, "?limit=10"));
    const from = first.body.next_batch as string;
    const repeats = [];
    for (let i = 0; i < 3; i++) {
      repeats.push(
        await dehydrated(s.server, s.bob, "GET", eventsPath(s.deviceId, `?limit=10&from=${from}`)),
      );
    }

    expect(numbers(first.body)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const page of repeats) {
      expect(page.body.next_batch).toBe(from);
      expect(numbers(page.body)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    }
    expect(s.mock.control.dehydratedEventsFault()?.served).toBe(3);
  });

  it("repeat-cursor with no token given repeats the start token (POST)", async () => {
    const s = await withMessages("tuwunel", 5);
    s.mock.control.setDehydratedEventsFault({ kind: "repeat-cursor" });

    const a = await dehydrated(s.server, s.bob, "POST", eventsPath(s.deviceId), {});
    const b = await dehydrated(s.server, s.bob, "POST", eventsPath(s.deviceId), {
      next_batch: a.body.next_batch,
    });

    expect(a.body.next_batch).toBe("0");
    expect(b.body.next_batch).toBe("0");
  });

  it("never-ends: a new next_batch every time, with filler events when asked", async () => {
    const s = await withMessages("synapse-1.157", 0);
    s.mock.control.setDehydratedEventsFault({ kind: "never-ends", eventsPerPage: 2 });

    const tokens: string[] = [];
    let from = "";
    for (let i = 0; i < 5; i++) {
      const page = await dehydrated(s.server, s.bob, "GET", eventsPath(s.deviceId, `?from=${from}`));
      expect(page.status).toBe(200);
      expect(page.body.events).toHaveLength(2);
      expect((page.body.events as { type: string }[])[0]!.type).toBe("org.matrix.mock.filler");
      from = page.body.next_batch as string;
      tokens.push(from);
    }

    expect(new Set(tokens).size).toBe(5);
  });

  it("never-ends with empty pages keeps the POST variant going too", async () => {
    const s = await withMessages("synapse-1.156", 0);
    s.mock.control.setDehydratedEventsFault({ kind: "never-ends" });

    const a = await dehydrated(s.server, s.bob, "POST", eventsPath(s.deviceId), {});
    const b = await dehydrated(s.server, s.bob, "POST", eventsPath(s.deviceId), {
      next_batch: a.body.next_batch,
    });

    expect([a.body.events, b.body.events]).toEqual([[], []]);
    expect(a.body.next_batch).not.toBe(b.body.next_batch);
  });

  it("pages: the fault stops after that many faulty pages and the server answers correctly again", async () => {
    const s = await withMessages("msc", 3);
    s.mock.control.setDehydratedEventsFault({ kind: "never-ends", pages: 1 });

    const faulty = await dehydrated(s.server, s.bob, "GET", eventsPath(s.deviceId));
    const correct = await dehydrated(s.server, s.bob, "GET", eventsPath(s.deviceId));

    expect(faulty.body).toEqual({ events: [], next_batch: "d1" });
    expect(correct.body).toMatchObject({ events: [{}, {}, {}] });
    expect(s.mock.control.dehydratedEventsFault()).toBeUndefined();
  });

  it("a fault for one user leaves the others' drains alone", async () => {
    const s = await withMessages("synapse-1.157", 2);
    s.mock.control.setDehydratedEventsFault({ kind: "never-ends", userId: s.alice.userId });

    const page = await dehydrated(s.server, s.bob, "GET", eventsPath(s.deviceId));

    expect(page.body).toEqual({ events: expect.any(Array) });
    expect(numbers(page.body)).toEqual([1, 2]);
  });

  it("errors still come first: a faulty server still answers 403 for another device id", async () => {
    const s = await withMessages("synapse-1.157", 2);
    s.mock.control.setDehydratedEventsFault({ kind: "repeat-cursor" });

    const res = await dehydrated(s.server, s.bob, "GET", eventsPath("SOMETHING-ELSE"));

    expect(res.status).toBe(403);
    expect(s.mock.control.dehydratedEventsFault()?.served).toBe(0);
  });

  it("reset() and clearDehydratedEventsFault() remove the fault", async () => {
    const s = await withMessages("synapse-1.157", 1);
    s.mock.control.setDehydratedEventsFault({ kind: "never-ends" });
    s.mock.control.reset();
    const afterReset = s.mock.control.dehydratedEventsFault();
    s.mock.control.setDehydratedEventsFault({ kind: "never-ends" });
    s.mock.control.clearDehydratedEventsFault();

    const page = await dehydrated(s.server, s.bob, "GET", eventsPath(s.deviceId));

    expect(afterReset).toBeUndefined();
    expect(page.body).toEqual({ events: [expect.objectContaining({ content: { n: 1 } })] });
  });

  it("refuses a bad spec with RangeError", async () => {
    const { mock } = await setup(start);

    expect(() => mock.control.setDehydratedEventsFault({ kind: "repeat-cursor", afterPages: -1 })).toThrow(
      RangeError,
    );
    expect(() => mock.control.setDehydratedEventsFault({ kind: "repeat-cursor", eventsPerPage: 2 })).toThrow(
      RangeError,
    );
    expect(() => mock.control.setDehydratedEventsFault({ kind: "never-ends", pages: 0 })).toThrow(RangeError);
  });
});

describe.each(transports)("over %s", (transport) => {
  let h: Harness;
  afterEach(async () => h?.close());

  async function user(name: string) {
    const res = await call(h, "POST", "/_mock/users", { body: { localpart: name } });
    expect(res.status).toBe(200);
    return { userId: res.body.user_id as string, token: res.body.access_token as string };
  }

  it("uploads, reads and drains a device whose id holds '/' and '+'", async () => {
    h = await startHarness(transport, { profile: "synapse-1.157" });
    const bob = await user("bob");
    const deviceId = dehydratedDeviceId("socket");
    const base = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device";

    const put = await call(h, "PUT", base, { token: bob.token, body: putBody(bob, deviceId) });
    enqueueMessages(h.homeserver, "@alice:localhost", { userId: bob.userId, deviceId }, 3);
    const get = await call(h, "GET", base, { token: bob.token });
    const page = await call(h, "GET", `${base}${eventsPath(deviceId, "?limit=2")}`, { token: bob.token });
    const rest = await call(h, "GET", `${base}${eventsPath(deviceId, `?from=${page.body.next_batch}`)}`, {
      token: bob.token,
    });

    expect(put.body).toEqual({ device_id: deviceId });
    expect(get.body.device_id).toBe(deviceId);
    expect(numbers(page.body)).toEqual([1, 2]);
    expect(rest.body).toEqual({ events: [expect.objectContaining({ content: { n: 3 } })] });
  });

  it("serves the control calls: inject, read back, set, read and clear a fault", async () => {
    h = await startHarness(transport, { profile: "tuwunel" });
    const bob = await user("bob");

    const injected = await call(h, "POST", "/_mock/dehydrated_device", {
      body: {
        user_id: bob.userId,
        device_id: "EVIL/+",
        device_data: { a: 1 },
        device_keys: FOREIGN_KEYS(bob.userId, "EVIL/+"),
      },
    });
    const readBack = await call(
      h,
      "GET",
      `/_mock/dehydrated_device?user_id=${encodeURIComponent(bob.userId)}`,
    );
    const set = await call(h, "PUT", "/_mock/dehydrated_events_fault", {
      body: { kind: "repeat-cursor", after_pages: 2, pages: 3 },
    });
    const read = await call(h, "GET", "/_mock/dehydrated_events_fault");
    const cleared = await call(h, "DELETE", "/_mock/dehydrated_events_fault");
    const none = await call(h, "GET", "/_mock/dehydrated_events_fault");

    expect(injected).toMatchObject({ status: 200, body: { device_id: "EVIL/+", device_data: { a: 1 } } });
    expect(readBack.body).toEqual({ device_id: "EVIL/+", device_data: { a: 1 } });
    expect(set.body).toMatchObject({ kind: "repeat-cursor", after_pages: 2, pages_left: 3, served: 0 });
    expect(read.body).toEqual(set.body);
    expect(cleared.status).toBe(200);
    expect(none.body).toEqual({ kind: null });
  });

  it("refuses bad control calls with 400", async () => {
    h = await startHarness(transport);

    const unknownUser = await call(h, "POST", "/_mock/dehydrated_device", {
      body: { user_id: "@nobody:localhost", device_id: "D", device_data: {} },
    });
    const badKind = await call(h, "PUT", "/_mock/dehydrated_events_fault", { body: { kind: "loop" } });
    const noneYet = await call(h, "GET", "/_mock/dehydrated_device?user_id=%40nobody%3Alocalhost");

    expect(unknownUser).toMatchObject({ status: 400, body: { errcode: "M_INVALID_PARAM" } });
    expect(badKind.status).toBe(400);
    expect(noneYet).toMatchObject({ status: 404, body: { errcode: "M_NOT_FOUND" } });
  });
});
