import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MockHomeserver } from "../../src/testing/index.js";
import { deviceListRefreshRoutes } from "../../src/testing/routes/device-list-refresh.js";
import { clientRoutes } from "../../src/testing/routes/index.js";
import { type Harness, startHarness, transports } from "./support/transports.js";

/**
 * Malformed input on every client route the mock serves (including the key and to-device routes):
 * missing/unknown tokens, bodies that are not JSON, JSON that is not an object, wrong types and
 * missing fields, then random JSON. Nothing may answer 500, and nothing may touch another user.
 * Everything runs in-process and over a real socket, where bodies pass through `node:http`.
 */

interface Sample {
  /** The body, or a function of the calling user's id. */
  body: unknown;
  errcode: string;
}
interface Case {
  wrongType?: Sample;
  missingField?: Sample;
}

const DEVICE = "{deviceId}";
/** Per route (`METHOD pattern` without the version prefix): a wrong-type and a missing-field body. */
const DEHYDRATED = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device";
const cases: Record<string, Case> = {
  [`PUT ${DEHYDRATED}`]: {
    wrongType: {
      body: { device_id: 5, device_data: { algorithm: "a" }, initial_device_display_name: null },
      errcode: "M_BAD_JSON",
    },
    missingField: {
      body: { device_data: { algorithm: "a" }, initial_device_display_name: null, device_keys: {} },
      errcode: "M_MISSING_PARAM",
    },
  },
  [`POST ${DEHYDRATED}/{deviceId}/events`]: { wrongType: { body: { next_batch: 5 }, errcode: "M_BAD_JSON" } },
  "POST register": {
    wrongType: { body: { username: 5, password: "x" }, errcode: "M_UNKNOWN" },
    missingField: {
      body: { username: "newuser", auth: { type: "m.login.dummy" } },
      errcode: "M_MISSING_PARAM",
    },
  },
  "POST refresh": {
    wrongType: { body: { refresh_token: 5 }, errcode: "M_INVALID_PARAM" },
    missingField: { body: {}, errcode: "M_MISSING_PARAM" },
  },
  "POST login": {
    wrongType: { body: { type: "m.login.password", user: "alice", password: 5 }, errcode: "M_INVALID_PARAM" },
    missingField: { body: { type: "m.login.password", user: "alice" }, errcode: "M_MISSING_PARAM" },
  },
  [`PUT devices/${DEVICE}`]: { wrongType: { body: { display_name: 5 }, errcode: "M_BAD_JSON" } },
  [`DELETE devices/${DEVICE}`]: { wrongType: { body: { auth: 5 }, errcode: "M_BAD_JSON" } },
  "POST delete_devices": {
    wrongType: { body: { devices: "ABC" }, errcode: "M_BAD_JSON" },
    missingField: { body: {}, errcode: "M_MISSING_PARAM" },
  },
  "PUT user/{userId}/account_data/{type}": {},
  "POST keys/upload": {
    wrongType: { body: { one_time_keys: [1] }, errcode: "M_BAD_JSON" },
    missingField: {
      body: { device_keys: { algorithms: [], device_id: "D", keys: {}, signatures: {} } },
      errcode: "M_MISSING_PARAM",
    },
  },
  "POST keys/query": { wrongType: { body: { device_keys: 5 }, errcode: "M_BAD_JSON" } },
  "POST keys/claim": { wrongType: { body: { one_time_keys: 5 }, errcode: "M_BAD_JSON" } },
  "POST keys/device_signing/upload": { wrongType: { body: { master_key: 5 }, errcode: "M_BAD_JSON" } },
  "POST keys/signatures/upload": {
    wrongType: { body: (userId: string) => ({ [userId]: 5 }), errcode: "M_INVALID_PARAM" },
  },
  "PUT sendToDevice/{eventType}/{txnId}": {
    wrongType: { body: { messages: 5 }, errcode: "M_BAD_JSON" },
    missingField: { body: {}, errcode: "M_MISSING_PARAM" },
  },
  "POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync": {
    wrongType: { body: { lists: 5 }, errcode: "M_BAD_JSON" },
    missingField: {
      body: { room_subscriptions: { "!r:localhost": { required_state: [] } } },
      errcode: "M_MISSING_PARAM",
    },
  },
};
// Rooms, filters and profiles. Message and state contents, filters and membership
// bodies take any JSON object, so those routes have no wrong-type or missing-field sample.
const ROOM = "rooms/{roomId}";
Object.assign(cases, {
  "POST createRoom": { wrongType: { body: { name: 5 }, errcode: "M_BAD_JSON" } },
  [`PUT ${ROOM}/send/{eventType}/{txnId}`]: {},
  [`PUT ${ROOM}/state/{eventType}`]: {},
  [`PUT ${ROOM}/state/{eventType}/`]: {},
  [`PUT ${ROOM}/state/{eventType}/{stateKey}`]: {},
  [`POST ${ROOM}/invite`]: { missingField: { body: {}, errcode: "M_MISSING_PARAM" } },
  [`POST ${ROOM}/kick`]: { missingField: { body: {}, errcode: "M_MISSING_PARAM" } },
  [`POST ${ROOM}/ban`]: { missingField: { body: {}, errcode: "M_MISSING_PARAM" } },
  [`POST ${ROOM}/unban`]: { missingField: { body: {}, errcode: "M_MISSING_PARAM" } },
  [`POST ${ROOM}/join`]: {},
  "POST join/{roomIdOrAlias}": {},
  [`POST ${ROOM}/leave`]: {},
  "POST user/{userId}/filter": {},
  "PUT profile/{userId}/displayname": {
    wrongType: { body: { displayname: 5 }, errcode: "M_INVALID_PARAM" },
    missingField: { body: {}, errcode: "M_MISSING_PARAM" },
  },
  "PUT profile/{userId}/avatar_url": {
    wrongType: { body: { avatar_url: 5 }, errcode: "M_INVALID_PARAM" },
    missingField: { body: {}, errcode: "M_MISSING_PARAM" },
  },
} satisfies Record<string, Case>);

/** Routes that read no body at all. */
const bodiless = new Set(["POST logout", "POST logout/all"]);
// MSC3814: DELETE reads no body; the others are methods the path does not serve (405).
for (const k of ["DELETE", "POST"]) bodiless.add(`${k} ${DEHYDRATED}`);
for (const k of ["PUT", "DELETE"]) bodiless.add(`${k} ${DEHYDRATED}/{deviceId}/events`);
// MSC2638's refresh sends no body; its other methods are not served (404, or 405 when it is on).
for (const r of deviceListRefreshRoutes) if (r.method !== "GET") bodiless.add(key(r.method, r.pattern));

function key(method: string, pattern: string): string {
  return `${method} ${pattern.replace(/^\/_matrix\/client\/(v3|r0)\//, "")}`;
}

describe.each(transports)("malformed input on every route (%s)", (transport) => {
  let h: Harness;
  let hs: MockHomeserver;
  let alice: { userId: string; deviceId: string; accessToken: string };
  let bob: { userId: string; deviceId: string; accessToken: string };
  let bobSnapshot: string;

  const snapshotBob = () =>
    JSON.stringify({
      devices: hs.state.accounts.devices(bob.userId),
      data: [...hs.state.accountData.all(bob.userId)],
      keys: hs.state.keys.deviceKeys(bob.userId, bob.deviceId) ?? null,
      otks: hs.state.keys.oneTimeKeyCounts(bob.userId, bob.deviceId),
      inbox: hs.state.toDevice.pendingCount(bob.userId, bob.deviceId),
    });

  // A counter, not randomness, so every run sends the same requests.
  let txn = 0;
  const pathFor = (pattern: string) =>
    pattern
      .replace("{userId}", encodeURIComponent(alice.userId))
      .replace("{deviceId}", alice.deviceId)
      .replace("{type}", "m.test")
      .replace("{eventType}", "m.test")
      .replace("{txnId}", `t${++txn}`);

  async function send(method: string, path: string, body: string | undefined, token = alice.accessToken) {
    const res = await h.fetch(path, {
      method,
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      ...(body !== undefined ? { body } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  }

  beforeAll(async () => {
    h = await startHarness(transport);
    hs = h.homeserver;
    alice = hs.control.createUser("alice", { password: "pw" })!;
    bob = hs.control.createUser("bob", { password: "pw" })!;
    hs.state.accountData.set(bob.userId, "m.secret", { v: 1 });
    hs.state.keys.setDeviceKeys(bob.userId, bob.deviceId, { user_id: bob.userId, device_id: bob.deviceId });
    bobSnapshot = snapshotBob();
  });
  afterAll(async () => {
    try {
      expect(snapshotBob()).toBe(bobSnapshot);
    } finally {
      await h.close();
    }
  });

  // Register refuses any access token, so unauthenticated routes are called without one.
  const tokenFor = (r: { unauthenticated?: boolean }) => (r.unauthenticated ? "" : alice.accessToken);

  const routes = clientRoutes.map((r) => ({ ...r, key: key(r.method, r.pattern) }));
  // Media upload takes raw bytes, not JSON (`rawBody` routes).
  const withBody = routes.filter((r) => r.method !== "GET" && !bodiless.has(r.key) && !r.rawBody);

  it("has a case for every route that takes a body", () => {
    const keys = new Set(withBody.map((r) => r.key));
    expect([...keys].sort()).toEqual(Object.keys(cases).sort());
  });

  it.each(routes.filter((r) => !r.unauthenticated))("$method $pattern needs a valid token", async (r) => {
    const missing = await send(r.method, pathFor(r.pattern), r.method === "GET" ? undefined : "{}", "");
    expect(missing).toMatchObject({ status: 401, body: { errcode: "M_MISSING_TOKEN" } });
    // The same route under r0, as Synapse's `client_patterns` serve it (the router's rule).
    const r0 = r.pattern.replace(/^\/_matrix\/client\/v3\//, "/_matrix/client/r0/");
    if (r0 !== r.pattern) {
      const underR0 = await send(r.method, pathFor(r0), r.method === "GET" ? undefined : "{}", "");
      expect(underR0).toMatchObject({ status: 401, body: { errcode: "M_MISSING_TOKEN" } });
    }
    const unknown = await send(
      r.method,
      pathFor(r.pattern),
      r.method === "GET" ? undefined : "{}",
      "mock_nope",
    );
    expect(unknown).toMatchObject({ status: 401, body: { errcode: "M_UNKNOWN_TOKEN" } });
  });

  it.each([...withBody, ...routes.filter((r) => bodiless.has(r.key))])(
    "$method $pattern refuses a body that is not JSON",
    async (r) => {
      for (const body of ["{nope", "\u00ff\u00fe", "NaN"]) {
        const res = await send(r.method, pathFor(r.pattern), body, tokenFor(r));
        expect(res).toMatchObject({ status: 400, body: { errcode: "M_NOT_JSON" } });
      }
    },
  );

  it.each(withBody)("$method $pattern refuses JSON that is not an object", async (r) => {
    for (const body of ["[]", "1", '"s"', "null"]) {
      const res = await send(r.method, pathFor(r.pattern), body, tokenFor(r));
      expect(res).toMatchObject({ status: 400, body: { errcode: "M_BAD_JSON" } });
    }
  });

  // Routes that take any JSON object have no sample; a test for them would check nothing.
  const withSamples = withBody.filter((r) => cases[r.key]?.wrongType || cases[r.key]?.missingField);

  it.each(withSamples)("$method $pattern refuses wrong types and missing fields", async (r) => {
    const c = cases[r.key]!;
    for (const sample of [c.wrongType, c.missingField].filter((sample) => sample !== undefined)) {
      const body = typeof sample.body === "function" ? sample.body(alice.userId) : sample.body;
      const res = await send(r.method, pathFor(r.pattern), JSON.stringify(body), tokenFor(r));
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe(sample.errcode);
    }
  });

  it.each(withBody)("$method $pattern never fails with 500 on random JSON", async (r) => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 3 }), async (value) => {
        const res = await send(r.method, pathFor(r.pattern), JSON.stringify(value), tokenFor(r));
        expect(res.status).toBeLessThan(500);
        // A 401 without errcode is a UIA challenge, which must then name its flows.
        if (res.status === 401 && res.body.errcode === undefined) expect(res.body.flows).toBeDefined();
        else if (res.status >= 400) expect(typeof res.body.errcode).toBe("string");
      }),
      { numRuns: 40, seed: 1234 },
    );
    // Whatever was accepted, the caller can still authenticate unless it deleted its own device.
    if (!r.pattern.includes("devices")) {
      expect((await send("GET", "/_matrix/client/v3/account/whoami", undefined)).status).toBe(200);
    }
  });
});
