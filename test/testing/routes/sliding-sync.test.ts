import { describe, expect, it, vi } from "vitest";
import { ManualClock, type MockHomeserverOptions } from "../../../src/testing/index.js";
import { SLIDING_SYNC_PATH } from "../../../src/testing/routes/sliding-sync.js";
import { call, harnessesOn, register, type StartHarness, transports } from "../support/transports.js";
import { loginDevice, registerUser, signedCurveKey } from "./e2ee-test-users.js";
import { E2EE_ONLY, extension, slide } from "./sliding-sync-helpers.js";

async function setup(start: StartHarness, options: MockHomeserverOptions = {}) {
  const clock = new ManualClock();
  const server = await start({ clock, ...options });
  const mock = server.homeserver;
  const alice = await registerUser(server, "alice");
  const bob = await registerUser(server, "bob");
  return { clock, server, mock, alice, bob };
}

const TO_DEVICE = { extensions: { to_device: { enabled: true } } };

describe.each(transports)("simplified sliding sync: connections and pos (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("answers a first request with a pos, empty rooms and extensions, and no lists when none were asked for", async () => {
    const { server, alice } = await setup(start);

    const res = await slide(server, alice, {});

    expect(res.status).toBe(200);
    expect(res.body).toEqual({ pos: expect.any(String), rooms: {}, extensions: {} });
  });

  it("accepts the same pos again (a retried request), after which positions issued from others are gone", async () => {
    const { server, alice } = await setup(start);
    const first = (await slide(server, alice, {})).body.pos as string;
    const lost = (await slide(server, alice, {}, { pos: first })).body.pos as string;

    // The client never saw `lost` and retries with `first`: Synapse forgets the other positions.
    const retry = await slide(server, alice, {}, { pos: first });
    const next = await slide(server, alice, {}, { pos: retry.body.pos as string });
    const staleFirst = await slide(server, alice, {}, { pos: first });
    const staleLost = await slide(server, alice, {}, { pos: lost });

    expect(retry.status).toBe(200);
    expect(next.status).toBe(200);
    expect(staleFirst).toEqual({
      status: 400,
      body: { errcode: "M_UNKNOWN_POS", error: "Unknown position" },
    });
    expect(staleLost).toMatchObject({ status: 400, body: { errcode: "M_UNKNOWN_POS" } });
  });

  it("answers a pos it never handed out with 400 M_UNKNOWN_POS", async () => {
    const { server, alice } = await setup(start);
    const res = await slide(server, alice, {}, { pos: "987654" });
    expect(res).toMatchObject({ status: 400, body: { errcode: "M_UNKNOWN_POS" } });
  });

  it.each([
    ["garbage", "not-a-pos"],
    ["a Synapse-shaped token", "5/s2633508_17_338"],
    ["an empty string", ""],
  ])("answers an unparseable pos (%s) with 400 M_UNKNOWN", async (_name, pos) => {
    const { server, alice } = await setup(start);
    const res = await slide(server, alice, {}, { pos });
    expect(res).toEqual({ status: 400, body: { errcode: "M_UNKNOWN", error: "Invalid stream token" } });
  });

  it("refuses another user's pos, another device's pos and another conn_id's pos with M_UNKNOWN_POS", async () => {
    const { server, alice, bob } = await setup(start);
    const aliceLaptop = await loginDevice(server, "alice");
    const pos = (await slide(server, alice, { conn_id: "main" })).body.pos as string;

    const asBob = await slide(server, bob, { conn_id: "main" }, { pos });
    const asOtherDevice = await slide(server, aliceLaptop, { conn_id: "main" }, { pos });
    const asOtherConn = await slide(server, alice, { conn_id: "notifications" }, { pos });
    const withoutConnId = await slide(server, alice, {}, { pos });
    const asOwner = await slide(server, alice, { conn_id: "main" }, { pos });

    for (const res of [asBob, asOtherDevice, asOtherConn, withoutConnId]) {
      expect(res).toMatchObject({ status: 400, body: { errcode: "M_UNKNOWN_POS" } });
    }
    expect(asOwner.status).toBe(200);
  });

  it("ignores a pos in the body, as Synapse does: only the query parameter counts", async () => {
    const { server, alice } = await setup(start);
    const pos = (await slide(server, alice, E2EE_ONLY)).body.pos as string;

    const withBodyPos = await slide(server, alice, { ...E2EE_ONLY, pos: "garbage" });
    const validBodyPos = await slide(server, alice, { ...E2EE_ONLY, pos });

    expect(withBodyPos.status).toBe(200);
    // A request with `pos` only in the body is a first request: no device_lists under Synapse.
    expect(extension(validBodyPos, "e2ee")).not.toHaveProperty("device_lists");
  });

  it("forgets a connection's positions when a request without pos restarts it", async () => {
    const { server, alice } = await setup(start);
    const old = (await slide(server, alice, { conn_id: "c" })).body.pos as string;

    await slide(server, alice, { conn_id: "c" });
    const res = await slide(server, alice, { conn_id: "c" }, { pos: old });

    expect(res).toMatchObject({ status: 400, body: { errcode: "M_UNKNOWN_POS" } });
  });

  it("expires a connection idle for more than 7 days, counting from its last use", async () => {
    const { server, clock, alice } = await setup(start);
    const days = (n: number) => n * 24 * 60 * 60 * 1000;
    const idle = (await slide(server, alice, { conn_id: "idle" })).body.pos as string;
    const used = (await slide(server, alice, { conn_id: "used" })).body.pos as string;

    // Idle for exactly 7 days: still there. A millisecond more: gone.
    await clock.advance(days(7));
    const stillThere = await slide(server, alice, { conn_id: "used" }, { pos: used });
    await clock.advance(1);
    const expired = await slide(server, alice, { conn_id: "idle" }, { pos: idle });
    // Exactly 7 days after its last use, the connection that was used is still there.
    await clock.advance(days(7) - 1);
    const kept = await slide(server, alice, { conn_id: "used" }, { pos: stillThere.body.pos as string });

    expect(stillThere.status).toBe(200);
    expect(expired).toMatchObject({ status: 400, body: { errcode: "M_UNKNOWN_POS" } });
    expect(kept.status).toBe(200);
  });
});

describe.each(transports)("simplified sliding sync: request validation (%s)", (transport) => {
  const start = harnessesOn(transport);

  it.each([
    ["a timeout that is not an integer", { timeout: "soon" }, {}, "M_INVALID_PARAM"],
    ["a negative timeout", { timeout: -1 }, {}, "M_INVALID_PARAM"],
    ["a body that is not JSON", {}, "{", "M_NOT_JSON"],
    [
      "a list without timeline_limit",
      {},
      { lists: { all: { ranges: [[0, 9]], required_state: [] } } },
      "M_MISSING_PARAM",
    ],
    [
      "a timeline_limit over 1000",
      {},
      { lists: { all: { ranges: [[0, 9]], required_state: [], timeline_limit: 1001 } } },
      "M_BAD_JSON",
    ],
    [
      "a negative range",
      {},
      { lists: { all: { ranges: [[-1, 9]], required_state: [], timeline_limit: 1 } } },
      "M_BAD_JSON",
    ],
    [
      "a to-device since that is not an integer",
      {},
      { extensions: { to_device: { enabled: true, since: "abc" } } },
      "M_INVALID_PARAM",
    ],
  ])("answers %s with 400 %s", async (_name, query, body, errcode) => {
    const { server, alice } = await setup(start);
    const res = await slide(server, alice, body, query as Record<string, string>);
    expect(res).toMatchObject({ status: 400, body: { errcode } });
  });

  it("checks the body before the pos, so a bad body with an unknown pos is M_BAD_JSON", async () => {
    const { server, alice } = await setup(start);
    const res = await slide(server, alice, { lists: [] }, { pos: "424242" });
    expect(res).toMatchObject({ status: 400, body: { errcode: "M_BAD_JSON" } });
  });

  it("reports every body problem as M_BAD_JSON under tuwunel's validation", async () => {
    const { server, alice } = await setup(start, { profile: "tuwunel" });
    const res = await slide(server, alice, { extensions: { to_device: { enabled: true, limit: "all" } } });
    expect(res).toMatchObject({ status: 400, body: { errcode: "M_BAD_JSON" } });
  });

  it("needs an access token", async () => {
    const { server } = await setup(start);
    const res = await slide(server, { accessToken: "" }, {});
    expect(res).toMatchObject({ status: 401, body: { errcode: "M_MISSING_TOKEN" } });
  });
});

describe.each(transports)("simplified sliding sync: long-polling (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("answers a request without pos at once, whatever its timeout", async () => {
    const { server, alice } = await setup(start);
    const res = await slide(server, alice, TO_DEVICE, { timeout: 30_000 });
    expect(res.status).toBe(200);
  });

  it("waits on a pos with nothing new and returns as soon as a to-device message arrives", async () => {
    const { server, clock, alice, bob } = await setup(start);
    const pos = (await slide(server, alice, TO_DEVICE)).body.pos as string;

    const pending = slide(server, alice, TO_DEVICE, { pos, timeout: 30_000 });
    await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1));
    await bob.call("PUT", "sendToDevice/m.test/1", {
      messages: { [alice.userId]: { [alice.deviceId]: { n: 1 } } },
    });
    const res = await pending;

    expect(clock.now() - 1_700_000_000_000).toBe(0);
    expect(extension(res, "to_device").events).toEqual([
      { type: "m.test", sender: bob.userId, content: { n: 1 } },
    ]);
    expect(clock.pendingSleeps).toBe(0);
  });

  it("returns an empty response with a new pos when the timeout passes without news", async () => {
    const { server, clock, alice } = await setup(start);
    const pos = (await slide(server, alice, TO_DEVICE)).body.pos as string;

    let settled = false;
    const pending = slide(server, alice, TO_DEVICE, { pos, timeout: 30_000 }).finally(() => {
      settled = true;
    });
    await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1));
    await clock.advance(29_999);
    expect(settled).toBe(false);
    await clock.advance(1);
    const res = await pending;

    expect(res.status).toBe(200);
    expect(res.body.pos).not.toBe(pos);
    expect(extension(res, "to_device").events).toEqual([]);
  });

  it("does not end the wait for a one-time key count change under Synapse, but keeps waiting", async () => {
    const { server, clock, alice, bob } = await setup(start);
    await alice.call("POST", "keys/upload", {
      one_time_keys: { "signed_curve25519:A": signedCurveKey(alice, "key-a") },
    });
    const pos = (await slide(server, alice, E2EE_ONLY)).body.pos as string;

    let settled = false;
    const pending = slide(server, alice, E2EE_ONLY, { pos, timeout: 10_000 }).finally(() => {
      settled = true;
    });
    await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1));
    await bob.call("POST", "keys/claim", {
      one_time_keys: { [alice.userId]: { [alice.deviceId]: "signed_curve25519" } },
    });
    await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1));
    expect(settled).toBe(false);
    await clock.advance(10_000);
    const res = await pending;

    expect(extension(res, "e2ee").device_one_time_keys_count).toEqual({ signed_curve25519: 0 });
  });

  it("ends the wait for a one-time key count change under the msc profile's delta semantics", async () => {
    const { server, clock, alice, bob } = await setup(start, { profile: "msc" });
    await alice.call("POST", "keys/upload", {
      one_time_keys: { "signed_curve25519:A": signedCurveKey(alice, "key-a") },
    });
    const pos = (await slide(server, alice, E2EE_ONLY)).body.pos as string;

    const pending = slide(server, alice, E2EE_ONLY, { pos, timeout: 10_000 });
    await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1));
    await bob.call("POST", "keys/claim", {
      one_time_keys: { [alice.userId]: { [alice.deviceId]: "signed_curve25519" } },
    });
    const res = await pending;

    expect(extension(res, "e2ee")).toEqual({ device_one_time_keys_count: {} });
  });

  it("answers M_UNKNOWN_POS when the connection is expired while the request waits", async () => {
    const { server, mock, clock, alice } = await setup(start);
    const pos = (await slide(server, alice, TO_DEVICE)).body.pos as string;

    const pending = slide(server, alice, TO_DEVICE, { pos, timeout: 5_000 });
    await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1));
    mock.control.expireSlidingSyncConnections({ userId: alice.userId });
    await clock.advance(5_000);

    expect(await pending).toMatchObject({ status: 400, body: { errcode: "M_UNKNOWN_POS" } });
  });

  it("stops waiting when the client goes away, leaving no new position behind", async () => {
    const { server, mock, clock, alice } = await setup(start);
    const pos = (await slide(server, alice, TO_DEVICE)).body.pos as string;
    const abort = new AbortController();

    const pending = slide(server, alice, TO_DEVICE, { pos, timeout: 60_000 }, abort.signal);
    await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1));
    abort.abort();

    // In-process the aborted fetch may still settle; either way the wait must end. Over a socket
    // the server hears of the abort when the connection closes, a moment later.
    await pending.catch(() => undefined);
    await vi.waitFor(() => expect(clock.pendingSleeps).toBe(0));
    expect(mock.control.slidingSyncConnections(alice.userId)[0]?.positions).toEqual([Number(pos)]);
  });
});

describe.each(transports)(
  "simplified sliding sync: expiring connections through the control API (%s)",
  (transport) => {
    const start = harnessesOn(transport);

    it("expires one conn_id through MockControl and leaves the user's other connections alone", async () => {
      const { server, mock, alice } = await setup(start);
      const main = (await slide(server, alice, { conn_id: "main" })).body.pos as string;
      const other = (await slide(server, alice, { conn_id: "other" })).body.pos as string;

      const expired = mock.control.expireSlidingSyncConnections({ userId: alice.userId, connId: "main" });

      expect(expired).toBe(1);
      expect(await slide(server, alice, { conn_id: "main" }, { pos: main })).toMatchObject({
        status: 400,
        body: { errcode: "M_UNKNOWN_POS" },
      });
      expect((await slide(server, alice, { conn_id: "other" }, { pos: other })).status).toBe(200);
    });

    it("expires every connection of a user over HTTP, lists connections, and leaves other users alone", async () => {
      const h = await start();
      const alice = await register(h, "alice");
      const bob = await register(h, "bob");
      const syncAs = (token: string, body: unknown, pos?: string) =>
        call(h, "POST", `${SLIDING_SYNC_PATH}${pos ? `?pos=${pos}` : ""}`, { token, body });
      const a1 = (await syncAs(alice.token, { conn_id: "a" })).body.pos as string;
      const a2 = (await syncAs(alice.token, { conn_id: "b" })).body.pos as string;
      const b1 = (await syncAs(bob.token, { conn_id: "a" })).body.pos as string;

      const listed = await call(
        h,
        "GET",
        `/_mock/sliding_sync/connections?user_id=${encodeURIComponent(alice.userId)}`,
      );
      const expired = await call(h, "POST", "/_mock/sliding_sync/expire", {
        body: { user_id: alice.userId },
      });
      const badExpire = await call(h, "POST", "/_mock/sliding_sync/expire", { body: { conn_id: "a" } });

      expect(listed.status).toBe(200);
      expect(listed.body.connections).toEqual([
        {
          user_id: alice.userId,
          device_id: alice.deviceId,
          conn_id: "a",
          positions: [a1],
          last_used_at: expect.any(Number),
        },
        {
          user_id: alice.userId,
          device_id: alice.deviceId,
          conn_id: "b",
          positions: [a2],
          last_used_at: expect.any(Number),
        },
      ]);
      expect(expired).toMatchObject({ status: 200, body: { expired: 2 } });
      expect(badExpire).toMatchObject({ status: 400, body: { errcode: "M_MISSING_PARAM" } });
      expect((await syncAs(alice.token, { conn_id: "a" }, a1)).body.errcode).toBe("M_UNKNOWN_POS");
      expect((await syncAs(alice.token, { conn_id: "b" }, a2)).body.errcode).toBe("M_UNKNOWN_POS");
      expect((await syncAs(bob.token, { conn_id: "a" }, b1)).status).toBe(200);
    });
  },
);
