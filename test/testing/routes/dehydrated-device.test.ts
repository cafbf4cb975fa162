import { describe, expect, it } from "vitest";
import { type ProfileName, profiles } from "../../../src/testing/index.js";
import { harnessesOn, type StartHarness, transports } from "../support/transports.js";
import {
  dehydrated,
  dehydratedDeviceId,
  enqueueMessages,
  eventsPath,
  numbers,
  putBody,
  sendToDevice,
} from "./dehydrated-device-helpers.js";
import { registerUser } from "./e2ee-test-users.js";

async function setup(start: StartHarness, profile: ProfileName = "synapse-1.157", overrides = {}) {
  const server = await start({ profile, overrides });
  const mock = server.homeserver;
  const alice = await registerUser(server, "alice");
  const bob = await registerUser(server, "bob");
  return { server, mock, alice, bob };
}

type Setup = Awaited<ReturnType<typeof setup>>;

/** Bob uploads a dehydrated device with a `/` and a `+` in its id. */
async function bobDehydrates(s: Setup, seed = "first") {
  const deviceId = dehydratedDeviceId(seed);
  const res = await dehydrated(s.server, s.bob, "PUT", "", putBody(s.bob, deviceId, seed));
  expect(res).toMatchObject({ status: 200, body: { device_id: deviceId } });
  return deviceId;
}

async function deviceIds(s: Setup) {
  const res = await s.bob.call("GET", "devices");
  return (res.body.devices as { device_id: string }[]).map((d) => d.device_id);
}

async function queriedKeys(s: Setup) {
  const res = await s.alice.call("POST", "keys/query", { device_keys: { [s.bob.userId]: [] } });
  return (res.body.device_keys as Record<string, Record<string, Record<string, unknown>>>)[s.bob.userId]!;
}

describe.each(transports)("PUT / GET / DELETE dehydrated_device (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("stores the device and hands device_id and device_data back exactly as uploaded", async () => {
    const s = await setup(start);
    const deviceId = await bobDehydrates(s);

    const got = await dehydrated(s.server, s.bob, "GET");

    expect(got.status).toBe(200);
    expect(got.body).toEqual({
      device_id: deviceId,
      device_data: putBody(s.bob, deviceId, "first").device_data,
    });
  });

  it("makes the device an ordinary device: listed, queryable with dehydrated: true, claimable, reached by '*'", async () => {
    const s = await setup(start);
    const before = s.mock.state.keys.position;
    const deviceId = await bobDehydrates(s);

    expect(await deviceIds(s)).toEqual([s.bob.deviceId, deviceId]);
    const listed = await s.bob.call("GET", `devices/${encodeURIComponent(deviceId)}`);
    expect(listed.body.display_name).toBe("Dehydrated device");

    const keys = (await queriedKeys(s))[deviceId]!;
    expect(keys.dehydrated).toBe(true);
    expect(keys.keys).toEqual(putBody(s.bob, deviceId, "first").device_keys.keys);

    const claims = [];
    for (let i = 0; i < 4; i++) {
      const res = await s.alice.call("POST", "keys/claim", {
        one_time_keys: { [s.bob.userId]: { [deviceId]: "signed_curve25519" } },
      });
      claims.push(
        Object.keys(
          (res.body.one_time_keys as Record<string, Record<string, object>>)[s.bob.userId]![deviceId]!,
        ),
      );
    }
    // Two one-time keys, oldest first, then the fallback key for ever.
    expect(claims).toEqual([
      ["signed_curve25519:AAAAAQ"],
      ["signed_curve25519:AAAAAg"],
      ["signed_curve25519:AAAAAw"],
      ["signed_curve25519:AAAAAw"],
    ]);

    await s.alice.call("PUT", "sendToDevice/m.room.encrypted/star", {
      messages: { [s.bob.userId]: { "*": { n: 1 } } },
    });
    expect(s.mock.state.toDevice.pendingCount(s.bob.userId, deviceId)).toBe(1);
    expect(s.mock.state.keys.changedUsersSince(s.bob.userId, before)).toContain(s.bob.userId);
  });

  it("answers 404 M_NOT_FOUND to GET and DELETE when the user has no dehydrated device", async () => {
    const s = await setup(start);

    const get = await dehydrated(s.server, s.bob, "GET");
    const del = await dehydrated(s.server, s.bob, "DELETE");

    expect(get).toMatchObject({ status: 404, body: { errcode: "M_NOT_FOUND" } });
    expect(del).toMatchObject({ status: 404, body: { errcode: "M_NOT_FOUND" } });
  });

  it("DELETE needs no user-interactive auth and takes the device, its keys and its messages with it", async () => {
    const s = await setup(start);
    const deviceId = await bobDehydrates(s);
    await sendToDevice(s.alice, { userId: s.bob.userId, deviceId }, 3);
    const before = s.mock.state.keys.position;

    const del = await dehydrated(s.server, s.bob, "DELETE");

    expect(del).toMatchObject({ status: 200, body: { device_id: deviceId } });
    expect((await dehydrated(s.server, s.bob, "GET")).status).toBe(404);
    expect(await deviceIds(s)).toEqual([s.bob.deviceId]);
    expect((await queriedKeys(s))[deviceId]).toBeUndefined();
    expect(s.mock.state.toDevice.pendingCount(s.bob.userId, deviceId)).toBe(0);
    expect(s.mock.state.keys.changedUsersSince(s.bob.userId, before)).toEqual([s.bob.userId]);
  });

  it("replaces the previous device on PUT: the old one is deleted with its queued messages", async () => {
    const s = await setup(start);
    const first = await bobDehydrates(s, "first");
    await sendToDevice(s.alice, { userId: s.bob.userId, deviceId: first }, 2);

    const second = await bobDehydrates(s, "second");

    expect(await deviceIds(s)).toEqual([s.bob.deviceId, second]);
    expect(s.mock.state.toDevice.pendingCount(s.bob.userId, first)).toBe(0);
    expect((await queriedKeys(s))[first]).toBeUndefined();
    expect((await dehydrated(s.server, s.bob, "GET")).body.device_id).toBe(second);
    const events = await dehydrated(s.server, s.bob, "GET", eventsPath(first));
    expect(events).toMatchObject({ status: 403, body: { errcode: "M_FORBIDDEN" } });
  });

  it("forgets the dehydrated device when it is deleted through /devices", async () => {
    const s = await setup(start);
    const deviceId = await bobDehydrates(s);

    const del = await s.bob.call("DELETE", `devices/${encodeURIComponent(deviceId)}`, {
      auth: { type: "m.login.dummy" },
    });

    expect(del.status).toBe(200);
    expect((await dehydrated(s.server, s.bob, "GET")).status).toBe(404);
    expect((await dehydrated(s.server, s.bob, "DELETE")).status).toBe(404);
  });

  it("forgets the dehydrated device on logout/all, which deletes every device of the user", async () => {
    const s = await setup(start);
    await bobDehydrates(s);
    const second = await registerUserDevice(s);

    await s.bob.call("POST", "logout/all", {});

    expect((await dehydrated(s.server, second, "GET")).status).toBe(401);
    expect(s.mock.control.dehydratedDevice(s.bob.userId)).toBeUndefined();
  });

  it("keeps the dehydrated device when another device of the user logs out", async () => {
    const s = await setup(start);
    const deviceId = await bobDehydrates(s);
    const other = await registerUserDevice(s);

    await other.call("POST", "logout", {});

    expect((await dehydrated(s.server, s.bob, "GET")).body.device_id).toBe(deviceId);
  });

  it("serves each user their own dehydrated device", async () => {
    const s = await setup(start);
    const bobs = await bobDehydrates(s);
    const alices = dehydratedDeviceId("alice");
    await dehydrated(s.server, s.alice, "PUT", "", putBody(s.alice, alices, "alice"));

    expect((await dehydrated(s.server, s.alice, "GET")).body.device_id).toBe(alices);
    expect((await dehydrated(s.server, s.bob, "GET")).body.device_id).toBe(bobs);
    const foreign = await dehydrated(s.server, s.alice, "GET", eventsPath(bobs));
    expect(foreign).toMatchObject({ status: 403, body: { errcode: "M_FORBIDDEN" } });
  });

  it("requires an access token", async () => {
    const s = await setup(start);

    const res = await dehydrated(s.server, undefined, "GET");

    expect(res).toMatchObject({ status: 401, body: { errcode: "M_MISSING_TOKEN" } });
  });
});

async function registerUserDevice(s: Setup) {
  const { loginDevice } = await import("./e2ee-test-users.js");
  return loginDevice(s.server, "bob");
}

describe.each(transports)("PUT dehydrated_device validation, Synapse rules (%s)", (transport) => {
  const start = harnessesOn(transport);

  const cases: [name: string, body: (s: Setup, id: string) => unknown, errcode: string][] = [
    ["a body that is not JSON", () => "{not json", "M_NOT_JSON"],
    ["a JSON array", () => [], "M_BAD_JSON"],
    ["an empty object (several fields missing)", () => ({}), "M_BAD_JSON"],
    ["a missing device_id", (s, id) => without(putBody(s.bob, id), "device_id"), "M_MISSING_PARAM"],
    ["a missing device_data", (s, id) => without(putBody(s.bob, id), "device_data"), "M_MISSING_PARAM"],
    [
      "a missing initial_device_display_name key (required since Synapse 1.142)",
      (s, id) => without(putBody(s.bob, id), "initial_device_display_name"),
      "M_MISSING_PARAM",
    ],
    [
      "device_data without algorithm",
      (s, id) => ({ ...putBody(s.bob, id), device_data: { device_pickle: "p" } }),
      "M_MISSING_PARAM",
    ],
    ["a device_id that is a number", (s, id) => ({ ...putBody(s.bob, id), device_id: 7 }), "M_BAD_JSON"],
    [
      "a display name that is not a string",
      (s, id) => ({ ...putBody(s.bob, id), initial_device_display_name: 1 }),
      "M_BAD_JSON",
    ],
  ];

  for (const [name, body, errcode] of cases) {
    it(`refuses ${name} with 400 ${errcode} and keeps the previous device`, async () => {
      const s = await setup(start);
      const previous = await bobDehydrates(s);

      const res = await dehydrated(s.server, s.bob, "PUT", "", body(s, dehydratedDeviceId("new")));

      expect(res).toMatchObject({ status: 400, body: { errcode } });
      expect((await dehydrated(s.server, s.bob, "GET")).body.device_id).toBe(previous);
    });
  }

  it("accepts a null display name", async () => {
    const s = await setup(start);
    const id = dehydratedDeviceId("null-name");

    const res = await dehydrated(s.server, s.bob, "PUT", "", {
      ...putBody(s.bob, id),
      initial_device_display_name: null,
    });

    expect(res).toMatchObject({ status: 200, body: { device_id: id } });
  });

  it("deletes the previous device before it finds device_keys missing (400 M_UNKNOWN)", async () => {
    const s = await setup(start);
    const previous = await bobDehydrates(s);
    await sendToDevice(s.alice, { userId: s.bob.userId, deviceId: previous }, 2);

    const res = await dehydrated(
      s.mock,
      s.bob,
      "PUT",
      "",
      without(putBody(s.bob, dehydratedDeviceId("x")), "device_keys"),
    );

    expect(res).toMatchObject({ status: 400, body: { errcode: "M_UNKNOWN" } });
    expect((await dehydrated(s.server, s.bob, "GET")).status).toBe(404);
    expect(await deviceIds(s)).toEqual([s.bob.deviceId]);
    expect(s.mock.state.toDevice.pendingCount(s.bob.userId, previous)).toBe(0);
  });

  it("checks the display name's length (100) only after deleting the previous device", async () => {
    const s = await setup(start);
    await bobDehydrates(s);
    const id = dehydratedDeviceId("long");

    const tooLong = await dehydrated(s.server, s.bob, "PUT", "", {
      ...putBody(s.bob, id),
      initial_device_display_name: "x".repeat(101),
    });
    const gone = await dehydrated(s.server, s.bob, "GET");
    const longest = await dehydrated(s.server, s.bob, "PUT", "", {
      ...putBody(s.bob, id),
      initial_device_display_name: "x".repeat(100),
    });

    expect(tooLong).toMatchObject({ status: 400, body: { errcode: "M_TOO_LARGE" } });
    expect(gone.status).toBe(404);
    expect(longest.status).toBe(200);
  });

  it("answers 400 M_BAD_JSON (Synapse: 500) for a one-time key id without one ':' and records no dehydrated device", async () => {
    const s = await setup(start);
    const id = dehydratedDeviceId("bad-otk");

    const res = await dehydrated(s.server, s.bob, "PUT", "", {
      ...putBody(s.bob, id),
      one_time_keys: { "no-colon": "key" },
    });

    expect(res).toMatchObject({ status: 400, body: { errcode: "M_BAD_JSON" } });
    expect((await dehydrated(s.server, s.bob, "GET")).status).toBe(404);
  });

  it("stores no device keys for an empty device_keys object but still creates the device", async () => {
    const s = await setup(start);
    const id = dehydratedDeviceId("empty-keys");

    const res = await dehydrated(s.server, s.bob, "PUT", "", { ...putBody(s.bob, id), device_keys: {} });

    expect(res.status).toBe(200);
    expect(await deviceIds(s)).toContain(id);
    expect((await queriedKeys(s))[id]).toBeUndefined();
  });

  it("reuses an ordinary device whose id the client names", async () => {
    const s = await setup(start);

    const res = await dehydrated(s.server, s.bob, "PUT", "", putBody(s.bob, s.bob.deviceId));

    expect(res).toMatchObject({ status: 200, body: { device_id: s.bob.deviceId } });
    expect(await deviceIds(s)).toEqual([s.bob.deviceId]);
  });
});

describe.each(transports)("PUT dehydrated_device validation, MSC and ruma rules (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("msc: the display name is optional and a missing device_keys is 400 M_MISSING_PARAM, deleting nothing", async () => {
    const s = await setup(start, "msc");
    const previous = await bobDehydrates(s);
    const id = dehydratedDeviceId("msc");

    const noName = await dehydrated(
      s.mock,
      s.bob,
      "PUT",
      "",
      without(putBody(s.bob, id), "initial_device_display_name"),
    );
    const noKeys = await dehydrated(
      s.mock,
      s.bob,
      "PUT",
      "",
      without(putBody(s.bob, previous), "device_keys"),
    );

    expect(noName).toMatchObject({ status: 200, body: { device_id: id } });
    expect(noKeys).toMatchObject({ status: 400, body: { errcode: "M_MISSING_PARAM" } });
    expect((await dehydrated(s.server, s.bob, "GET")).body.device_id).toBe(id);
  });

  it("tuwunel: every body error is 400 M_BAD_JSON and deletes nothing", async () => {
    const s = await setup(start, "tuwunel");
    const previous = await bobDehydrates(s);
    const id = dehydratedDeviceId("ruma");

    const noKeys = await dehydrated(s.server, s.bob, "PUT", "", without(putBody(s.bob, id), "device_keys"));
    const badKeyId = await dehydrated(s.server, s.bob, "PUT", "", {
      ...putBody(s.bob, id),
      one_time_keys: { nocolon: "k" },
    });
    const noId = await dehydrated(s.server, s.bob, "PUT", "", without(putBody(s.bob, id), "device_id"));

    for (const res of [noKeys, badKeyId, noId])
      expect(res).toMatchObject({ status: 400, body: { errcode: "M_BAD_JSON" } });
    expect((await dehydrated(s.server, s.bob, "GET")).body.device_id).toBe(previous);
  });

  it("tuwunel: device_data needs no algorithm and the display name key may be absent", async () => {
    const s = await setup(start, "tuwunel");
    const id = dehydratedDeviceId("ruma-data");
    const body = {
      ...without(putBody(s.bob, id), "initial_device_display_name"),
      device_data: { opaque: [1, 2] },
    };

    const res = await dehydrated(s.server, s.bob, "PUT", "", body);

    expect(res).toMatchObject({ status: 200, body: { device_id: id } });
    expect((await dehydrated(s.server, s.bob, "GET")).body.device_data).toEqual({ opaque: [1, 2] });
  });

  it("tuwunel: refuses the id of an ordinary device with 500 M_UNKNOWN", async () => {
    const s = await setup(start, "tuwunel");

    const res = await dehydrated(s.server, s.bob, "PUT", "", putBody(s.bob, s.bob.deviceId));

    expect(res).toMatchObject({ status: 500, body: { errcode: "M_UNKNOWN" } });
    expect(await deviceIds(s)).toEqual([s.bob.deviceId]);
  });
});

describe.each(transports)("the dehydratedDevices flag (%s)", (transport) => {
  const start = harnessesOn(transport);

  const paths = (id: string) => ["", eventsPath(id), eventsPath(id, "?from=d1")];

  for (const profile of Object.keys(profiles) as ProfileName[]) {
    it(`${profile}: off, every method on every dehydration path is 404 M_UNRECOGNIZED`, async () => {
      const s = await setup(start, profile, { dehydratedDevices: false });
      const id = dehydratedDeviceId("off");

      for (const path of paths(id)) {
        for (const method of ["GET", "PUT", "POST", "DELETE"]) {
          const body = method === "PUT" || method === "POST" ? putBody(s.bob, id) : undefined;
          const res = await dehydrated(s.server, s.bob, method, path, body);
          expect([method, path, res.status, res.body.errcode]).toEqual([method, path, 404, "M_UNRECOGNIZED"]);
        }
      }
    });

    it(`${profile}: on by default, GET tells "none yet" (404 M_NOT_FOUND), not "unsupported"`, async () => {
      const s = await setup(start, profile);

      const res = await dehydrated(s.server, s.bob, "GET");

      expect(res).toMatchObject({ status: 404, body: { errcode: "M_NOT_FOUND" } });
    });
  }

  it("off for one server, the other endpoints still work", async () => {
    const s = await setup(start, "synapse-1.157", { dehydratedDevices: false });

    const res = await s.bob.call("GET", "devices");

    expect(res.status).toBe(200);
  });
});

describe.each(transports)("methods a path does not serve (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("Synapse answers 405 M_UNRECOGNIZED to POST /dehydrated_device and PUT/DELETE on …/events", async () => {
    const s = await setup(start, "synapse-1.157");
    const id = await bobDehydrates(s);

    const results = [
      await dehydrated(s.server, s.bob, "POST", "", {}),
      await dehydrated(s.server, s.bob, "PUT", eventsPath(id), {}),
      await dehydrated(s.server, s.bob, "DELETE", eventsPath(id)),
    ];

    for (const res of results)
      expect(res).toMatchObject({ status: 405, body: { errcode: "M_UNRECOGNIZED" } });
  });

  it("tuwunel answers 405 M_UNRECOGNIZED too (its router rewrites the framework's bare 405)", async () => {
    const s = await setup(start, "tuwunel");

    const res = await dehydrated(s.server, s.bob, "POST", "", {});

    expect(res).toMatchObject({ status: 405, body: { errcode: "M_UNRECOGNIZED" } });
  });

  it("a server whose 405 has no error body answers a bare 405 without errcode", async () => {
    const s = await setup(start, "tuwunel", { wrongMethodHasErrorBody: false });

    const res = await dehydrated(s.server, s.bob, "POST", "", {});

    expect(res.status).toBe(405);
    expect(res.text).toBe("");
  });
});

/** Synapse's `d<stream id>`, tuwunel's bare decimal count, or no token at all. */
function tokenShape(token: unknown): string {
  if (token === undefined) return "none";
  if (/^d\d+$/.test(String(token))) return "d<stream id>";
  return /^\d+$/.test(String(token)) ? "decimal" : String(token);
}

describe.each(transports)("profile table (%s)", (transport) => {
  const start = harnessesOn(transport);

  /** How a client finds a named profile's `…/events`: which methods answer, page size, tokens, `limit`. */
  async function drainShape(profile: ProfileName) {
    const s = await setup(start, profile);
    const id = await bobDehydrates(s);
    enqueueMessages(s.mock, s.alice.userId, { userId: s.bob.userId, deviceId: id }, 120);
    const page = async (method: "GET" | "POST", query = "") => {
      const res = await dehydrated(
        s.server,
        s.bob,
        method,
        eventsPath(id, query),
        method === "POST" ? {} : undefined,
      );
      if (res.status !== 200) return `${res.status} ${res.body.errcode}`;
      return {
        events: numbers(res.body).length,
        first: numbers(res.body)[0],
        nextBatch: tokenShape(res.body.next_batch),
      };
    };
    return {
      GET: await page("GET"),
      POST: await page("POST"),
      "?limit=2": await page(profile === "msc" ? "GET" : "POST", "?limit=2"),
    };
  }

  it("each named profile drains as its server does", async () => {
    const hundred = { events: 100, first: 1, nextBatch: "d<stream id>" };
    const observed: Record<string, unknown> = {};
    for (const profile of ["synapse-1.157", "synapse-1.156", "tuwunel", "msc"] as const) {
      observed[profile] = await drainShape(profile);
    }

    expect(observed).toEqual({
      // The current MSC's GET and the draft's POST, 100 a page, d<stream id> tokens, limit read.
      "synapse-1.157": { GET: hundred, POST: hundred, "?limit=2": { ...hundred, events: 2 } },
      // POST only: GET …/events is a wrong method.
      "synapse-1.156": { GET: "405 M_UNRECOGNIZED", POST: hundred, "?limit=2": { ...hundred, events: 2 } },
      // POST only, pages of 50, bare decimal tokens, limit ignored.
      tuwunel: {
        GET: "405 M_UNRECOGNIZED",
        POST: { events: 50, first: 1, nextBatch: "decimal" },
        "?limit=2": { events: 50, first: 1, nextBatch: "decimal" },
      },
      // GET only.
      msc: { GET: hundred, POST: "405 M_UNRECOGNIZED", "?limit=2": { ...hundred, events: 2 } },
    });
  });

  it("an override replaces one flag and leaves the others", async () => {
    const s = await setup(start, "synapse-1.157", { dehydratedEventsPageSize: 3 });
    const id = await bobDehydrates(s);
    await sendToDevice(s.alice, { userId: s.bob.userId, deviceId: id }, 4);

    const page = await dehydrated(s.server, s.bob, "GET", eventsPath(id));

    expect(numbers(page.body)).toEqual([1, 2, 3]);
    expect(page.body.next_batch).toMatch(/^d\d+$/);
  });
});

function without<T extends Record<string, unknown>>(body: T, key: keyof T): Partial<T> {
  const copy = { ...body };
  delete copy[key];
  return copy;
}
