import { describe, expect, it } from "vitest";
import { startMockServer } from "../../src/testing/index.js";
import { deviceKeysFor, fakePublicKey } from "./routes/e2ee-test-users.js";
import { createRoom, invite, join, leave, sharedRoom } from "./routes/room-support.js";
import { E2EE_ONLY, extension, slide } from "./routes/sliding-sync-helpers.js";
import { changedSince, curveKeyOf, federationWorlds, REMOTE, syncToken } from "./support/federation.js";
import { call, harnessesOn } from "./support/transports.js";

/**
 * Simulated federation over a real socket: a user of a hosted remote server logs in at the same
 * base URL; this server's users see that user's devices through this server's copy of the list,
 * which lost updates make stale and resyncs repair (state/remote-device-lists.ts).
 */

const start = federationWorlds();

describe("remote users", () => {
  it("log in with their full user id and see their own true device list", async () => {
    const { hs, dave, newDaveDevice } = await start();
    hs.control.loseDeviceListUpdates(dave.userId, true);
    await newDaveDevice("D2");

    const whoami = await dave.call("GET", "account/whoami");
    expect(whoami.body.user_id).toBe(`@dave:${REMOTE}`);
    const own = await dave.call("POST", "keys/query", { device_keys: { [dave.userId]: [] } });
    expect(Object.keys((own.body.device_keys as Record<string, object>)[dave.userId]!).sort()).toEqual([
      "D1",
      "D2",
    ]);
    expect(own.body.failures).toEqual({});
  });

  it("see local users' true lists, without device names (they stay on their server)", async () => {
    const { alice, dave } = await start();
    await alice.call("PUT", `devices/${alice.deviceId}`, { display_name: "Alice's laptop" });
    await alice.call("POST", "keys/upload", { device_keys: deviceKeysFor(alice, "alice") });

    const res = await dave.call("POST", "keys/query", { device_keys: { [alice.userId]: [] } });
    const keys = (res.body.device_keys as Record<string, Record<string, Record<string, unknown>>>)[
      alice.userId
    ]!;
    expect(keys[alice.deviceId]!.unsigned).toEqual({});
    const local = await alice.call("POST", "keys/query", { device_keys: { [alice.userId]: [] } });
    const own = (local.body.device_keys as Record<string, Record<string, Record<string, unknown>>>)[
      alice.userId
    ]!;
    expect(own[alice.deviceId]!.unsigned).toEqual({ device_display_name: "Alice's laptop" });
  });

  it("exchange to-device messages and claim keys across servers", async () => {
    const { alice, dave } = await start();
    await dave.call("POST", "keys/upload", {
      one_time_keys: { "signed_curve25519:AAAA": { key: fakePublicKey("otk"), signatures: {} } },
    });
    const send = await alice.call("PUT", "sendToDevice/m.test/t1", {
      messages: { [dave.userId]: { [dave.deviceId]: { hello: "dave" } } },
    });
    expect(send.status).toBe(200);
    const daveSync = await dave.call("GET", "sync?timeout=0");
    expect((daveSync.body.to_device as { events: unknown[] }).events).toEqual([
      { type: "m.test", sender: alice.userId, content: { hello: "dave" } },
    ]);

    const claim = await alice.call("POST", "keys/claim", {
      one_time_keys: { [dave.userId]: { [dave.deviceId]: "signed_curve25519" } },
    });
    expect(claim.body).toEqual({
      one_time_keys: {
        [dave.userId]: { D1: { "signed_curve25519:AAAA": { key: fakePublicKey("otk"), signatures: {} } } },
      },
      failures: {},
    });
  });
});

describe("this server's copy of a remote user's list", () => {
  it("is filled on the first query and kept current by updates, announced in device_lists.changed", async () => {
    const { hs, server, alice, dave, newDaveDevice, aliceQueriesDave } = await start();
    expect(hs.control.remoteCache(dave.userId)).toMatchObject({ cached: false, deviceIds: [], stale: false });

    expect(await aliceQueriesDave()).toEqual({ devices: ["D1"], failures: {} });
    expect(hs.control.remoteCache(dave.userId)).toMatchObject({
      cached: true,
      deviceIds: ["D1"],
      trueDeviceIds: ["D1"],
      stale: false,
      lastResync: { ok: true, reason: "query" },
    });

    const token = await syncToken(alice);
    const slidingPos = (await slide(server, alice, E2EE_ONLY)).body.pos as string;
    await newDaveDevice("D2");
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1", "D2"], failures: {} });
    expect(await changedSince(alice, token)).toEqual([dave.userId]);
    const sliding = await slide(server, alice, E2EE_ONLY, { pos: slidingPos, timeout: 0 });
    expect(extension(sliding, "e2ee").device_lists).toMatchObject({ changed: [dave.userId] });
  });

  it("goes stale while updates are lost, and a resync repairs it", async () => {
    const { hs, alice, dave, newDaveDevice, aliceQueriesDave } = await start();
    await aliceQueriesDave();
    hs.control.loseDeviceListUpdates(dave.userId, true);
    const aliceToken = await syncToken(alice);
    const daveToken = await syncToken(dave);

    await newDaveDevice("D2");
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1"], failures: {} });
    expect(hs.control.remoteCache(dave.userId)).toMatchObject({
      deviceIds: ["D1"],
      trueDeviceIds: ["D1", "D2"],
      stale: true,
      losingUpdates: true,
      markedForResync: false,
    });
    // The local user hears nothing; the remote user's own server told him.
    expect(await changedSince(alice, aliceToken)).toEqual([]);
    expect(await changedSince(dave, daveToken)).toEqual([dave.userId]);
    // Turning the loss off does not bring the lost update back.
    hs.control.loseDeviceListUpdates(dave.userId, false);
    expect(hs.control.remoteCache(dave.userId).stale).toBe(true);

    const after = hs.control.resyncRemoteUser(dave.userId);
    expect(after).toMatchObject({
      stale: false,
      deviceIds: ["D1", "D2"],
      lastResync: { ok: true, reason: "control" },
    });
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1", "D2"], failures: {} });
    expect(await changedSince(alice, aliceToken)).toEqual([dave.userId]);
  });

  it("the next update after the loss ends carries the whole list", async () => {
    const { hs, dave, newDaveDevice, aliceQueriesDave } = await start();
    await aliceQueriesDave();
    hs.control.loseDeviceListUpdates(dave.userId, true);
    await newDaveDevice("D2");
    hs.control.loseDeviceListUpdates(dave.userId, false);
    await newDaveDevice("D3");
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1", "D2", "D3"], failures: {} });
  });

  it("holds stale cross-signing keys too", async () => {
    const { hs, alice, dave, aliceQueriesDave } = await start();
    await aliceQueriesDave();
    hs.control.loseDeviceListUpdates(dave.userId, true);
    const master = {
      user_id: dave.userId,
      usage: ["master"],
      keys: { [`ed25519:${fakePublicKey("dave-master")}`]: fakePublicKey("dave-master") },
    };
    const up = await dave.call("POST", "keys/device_signing/upload", { master_key: master });
    expect(up.status, JSON.stringify(up.body)).toBe(200);

    const query = async () =>
      (await alice.call("POST", "keys/query", { device_keys: { [dave.userId]: [] } })).body.master_keys;
    expect(await query()).toEqual({});
    expect(hs.control.remoteCache(dave.userId).stale).toBe(true);
    hs.control.resyncRemoteUser(dave.userId);
    expect(await query()).toEqual({ [dave.userId]: master });
  });

  it("is kept only while the server shares a room with the remote user", async () => {
    const { hs, alice, dave, newDaveDevice, aliceQueriesDave } = await start({ shareRoom: false });
    hs.control.loseDeviceListUpdates(dave.userId, true);
    await newDaveDevice("D2");
    // No shared room: every query asks dave's server, so nothing is stale.
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1", "D2"], failures: {} });
    expect(hs.control.remoteCache(dave.userId).cached).toBe(false);

    const roomId = await sharedRoom(alice, dave);
    await aliceQueriesDave();
    expect(hs.control.remoteCache(dave.userId).cached).toBe(true);
    await leave(dave, roomId);
    expect(hs.control.remoteCache(dave.userId).cached).toBe(false);
  });

  it("is not kept for a remote user who is only invited", async () => {
    const { hs, alice, dave, aliceQueriesDave } = await start({ shareRoom: false });
    const roomId = await createRoom(alice);
    await invite(alice, roomId, dave);
    await aliceQueriesDave();
    expect(hs.control.remoteCache(dave.userId).cached).toBe(false);
    await join(dave, roomId);
    await aliceQueriesDave();
    expect(hs.control.remoteCache(dave.userId).cached).toBe(true);
  });
});

describe("an unreachable remote server", () => {
  it("fails a first query and key claims, and serves a held copy until a resync fails", async () => {
    const { hs, alice, dave, aliceQueriesDave } = await start();
    hs.control.setRemoteServerReachable(REMOTE, false);
    expect(hs.control.remoteServers()).toEqual([{ serverName: REMOTE, reachable: false }]);
    const failure = { [REMOTE]: { status: 503, message: "Not ready for retry" } };
    expect(await aliceQueriesDave()).toEqual({ devices: null, failures: failure });
    const claim = await alice.call("POST", "keys/claim", {
      one_time_keys: { [dave.userId]: { D1: "signed_curve25519" } },
    });
    expect(claim.body).toEqual({ one_time_keys: {}, failures: failure });

    hs.control.setRemoteServerReachable(REMOTE, true);
    hs.control.resyncRemoteUser(dave.userId);
    hs.control.setRemoteServerReachable(REMOTE, false);
    // A held copy is served as long as nothing marked it for resync (Synapse reads its cache).
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1"], failures: {} });
    // After a failed resync, Synapse leaves the user's devices out and lists the server.
    hs.control.resyncRemoteUser(dave.userId);
    expect(await aliceQueriesDave()).toEqual({ devices: null, failures: failure });
  });

  it("holds updates back and delivers them when it is reachable again", async () => {
    const { hs, alice, dave, newDaveDevice, aliceQueriesDave } = await start();
    await aliceQueriesDave();
    hs.control.setRemoteServerReachable(REMOTE, false);
    const token = await syncToken(alice);
    await newDaveDevice("D2");
    expect(hs.control.remoteCache(dave.userId)).toMatchObject({ updatePending: true, stale: true });
    expect(await changedSince(alice, token)).toEqual([]);

    hs.control.setRemoteServerReachable(REMOTE, true);
    expect(hs.control.remoteCache(dave.userId)).toMatchObject({ updatePending: false, stale: false });
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1", "D2"], failures: {} });
    expect(await changedSince(alice, token)).toEqual([dave.userId]);
  });

  it("retries a failed resync in the background with backoff until it succeeds", async () => {
    const { hs, clock, dave, newDaveDevice, aliceQueriesDave } = await start({
      federation: { resyncRetryMs: 1_000, resyncRetryMaxMs: 4_000 },
    });
    await aliceQueriesDave();
    hs.control.loseDeviceListUpdates(dave.userId, true);
    await newDaveDevice("D2");
    hs.control.setRemoteServerReachable(REMOTE, false);
    const t0 = clock.now();
    hs.control.resyncRemoteUser(dave.userId);
    const retries: number[] = [];
    for (let i = 0; i < 4; i++) {
      retries.push(hs.control.remoteCache(dave.userId).nextResync!.at - t0);
      await clock.runNext();
    }
    // 1 s, then doubling up to the 4 s cap.
    expect(retries).toEqual([1_000, 3_000, 7_000, 11_000]);
    expect(hs.control.remoteCache(dave.userId)).toMatchObject({
      stale: true,
      lastResync: { ok: false, reason: "retry" },
    });

    hs.control.setRemoteServerReachable(REMOTE, true);
    // Hearing from the server again brings the next retry forward to the first interval.
    expect(hs.control.remoteCache(dave.userId).nextResync).toEqual({
      at: clock.now() + 1_000,
      reason: "retry",
    });
    await clock.advance(1_000);
    expect(hs.control.remoteCache(dave.userId)).toMatchObject({
      stale: false,
      markedForResync: false,
      nextResync: null,
      lastResync: { ok: true, reason: "retry" },
    });
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1", "D2"], failures: {} });
  });
});

describe("background work", () => {
  it("stops when the server that created the homeserver closes (nothing keeps the process alive)", async () => {
    // The system clock: a pending retry would hold a real timer.
    const running = await startMockServer({ federation: { remoteServers: [REMOTE] } });
    const hs = running.homeserver;
    const dave = hs.control.createUser("dave", { server: REMOTE })!;
    hs.control.setRemoteServerReachable(REMOTE, false);
    expect(hs.control.resyncRemoteUser(dave.userId).nextResync).toMatchObject({ reason: "retry" });
    await running.close();
    expect(hs.control.remoteCache(dave.userId).nextResync).toBeNull();
    expect(hs.control.resyncRemoteUser(dave.userId)).toMatchObject({ failing: true, nextResync: null });
  });
});

describe("self-healing (Synapse resyncs a user on an unknown device)", () => {
  it("on a federated room m.room.encrypted naming an unknown device_id", async () => {
    const { hs, alice, dave, newDaveDevice, aliceQueriesDave } = await start();
    const roomId = await sharedRoom(alice, dave);
    await aliceQueriesDave();
    hs.control.loseDeviceListUpdates(dave.userId, true);
    const d2 = await newDaveDevice("D2");
    const token = await syncToken(alice);

    const sent = await d2.call("PUT", `rooms/${encodeURIComponent(roomId)}/send/m.room.encrypted/e1`, {
      algorithm: "m.megolm.v1.aes-sha2",
      ciphertext: "opaque",
      device_id: "D2",
      sender_key: curveKeyOf(deviceKeysFor(d2, "D2"), "D2"),
      session_id: "s",
    });
    expect(sent.status).toBe(200);
    expect(hs.control.remoteCache(dave.userId)).toMatchObject({
      stale: false,
      lastResync: { ok: true, reason: "unknown-device" },
    });
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1", "D2"], failures: {} });
    expect(await changedSince(alice, token)).toContain(dave.userId);
  });

  it("on a Megolm sender_key that is not the named device's curve25519 key", async () => {
    const { hs, alice, dave, aliceQueriesDave } = await start();
    const roomId = await sharedRoom(alice, dave);
    await aliceQueriesDave();
    const before = hs.control.remoteCache(dave.userId).lastResync;
    const send = (txn: string, senderKey: string) =>
      dave.call("PUT", `rooms/${encodeURIComponent(roomId)}/send/m.room.encrypted/${txn}`, {
        algorithm: "m.megolm.v1.aes-sha2",
        ciphertext: "opaque",
        device_id: "D1",
        sender_key: senderKey,
        session_id: "s",
      });
    await send("known", curveKeyOf(deviceKeysFor(dave, "D1"), "D1"));
    expect(hs.control.remoteCache(dave.userId).lastResync).toEqual(before);
    await send("unknown", fakePublicKey("another-key"));
    expect(hs.control.remoteCache(dave.userId).lastResync).toMatchObject({ reason: "unknown-device" });
  });

  it("on a to-device m.room_key_request from an unknown requesting_device_id", async () => {
    const { hs, alice, dave, newDaveDevice, aliceQueriesDave } = await start();
    await aliceQueriesDave();
    hs.control.loseDeviceListUpdates(dave.userId, true);
    const d2 = await newDaveDevice("D2");
    const res = await d2.call("PUT", "sendToDevice/m.room_key_request/k1", {
      messages: {
        [alice.userId]: {
          "*": { action: "request", requesting_device_id: "D2", request_id: "r1", body: {} },
        },
      },
    });
    expect(res.status).toBe(200);
    expect(hs.control.remoteCache(dave.userId)).toMatchObject({ stale: false, deviceIds: ["D1", "D2"] });
  });

  it("not on a to-device m.room.encrypted under synapse, but under msc", async () => {
    for (const [profile, healed] of [
      ["synapse-1.157", false],
      ["msc", true],
    ] as const) {
      const { hs, alice, dave, newDaveDevice, aliceQueriesDave } = await start({ profile });
      await aliceQueriesDave();
      hs.control.loseDeviceListUpdates(dave.userId, true);
      const d2 = await newDaveDevice("D2");
      const res = await d2.call("PUT", "sendToDevice/m.room.encrypted/o1", {
        messages: {
          [alice.userId]: {
            [alice.deviceId]: {
              algorithm: "m.olm.v1.curve25519-aes-sha2",
              sender_key: curveKeyOf(deviceKeysFor(d2, "D2"), "D2"),
              ciphertext: {},
            },
          },
        },
      });
      expect(res.status).toBe(200);
      expect(hs.control.remoteCache(dave.userId).stale, profile).toBe(!healed);
    }
  });

  it("not at all under the federation mode (tuwunel asks the remote server at every query)", async () => {
    const { hs, alice, dave, newDaveDevice, aliceQueriesDave } = await start({ profile: "tuwunel" });
    const roomId = await sharedRoom(alice, dave);
    hs.control.loseDeviceListUpdates(dave.userId, true);
    const d2 = await newDaveDevice("D2");
    await d2.call("PUT", `rooms/${encodeURIComponent(roomId)}/send/m.room.encrypted/e1`, {
      algorithm: "m.megolm.v1.aes-sha2",
      ciphertext: "opaque",
      device_id: "D2",
      sender_key: "x",
      session_id: "s",
    });
    expect(hs.control.remoteCache(dave.userId).lastResync).toBeNull();
    expect(await aliceQueriesDave()).toEqual({ devices: ["D1", "D2"], failures: {} });
  });
});

describe("the federation controls over HTTP", () => {
  const startHarness = harnessesOn("socket");
  const TOKEN = "federation-control-token";

  it("add servers, cut links, lose updates, read and resync the copy", async () => {
    const h = await startHarness({ controlToken: TOKEN });
    const ctl = (method: string, path: string, body?: unknown) =>
      call(h, method, path, { token: TOKEN, body });
    expect((await ctl("POST", "/_mock/remote_servers", { server_name: REMOTE })).body).toEqual({
      added: true,
    });
    expect((await ctl("POST", "/_mock/remote_servers", { server_name: REMOTE })).body).toEqual({
      added: false,
    });
    expect((await ctl("GET", "/_mock/remote_servers")).body).toEqual({
      remote_servers: [{ server_name: REMOTE, reachable: true }],
    });
    const user = await ctl("POST", "/_mock/users", { localpart: "dave", server: REMOTE });
    expect(user.body.user_id).toBe(`@dave:${REMOTE}`);
    const dave = user.body.user_id as string;

    expect((await ctl("PUT", "/_mock/lose_device_list_updates", { user_id: dave, lose: true })).status).toBe(
      200,
    );
    expect(
      (await ctl("PUT", "/_mock/remote_server_reachable", { server_name: REMOTE, reachable: false })).status,
    ).toBe(200);
    const cache = await ctl("GET", `/_mock/remote_cache?user_id=${encodeURIComponent(dave)}`);
    expect(cache.body).toEqual({
      user_id: dave,
      server_name: REMOTE,
      cached: false,
      device_ids: [],
      true_device_ids: [],
      stale: false,
      marked_for_resync: false,
      failing: false,
      losing_updates: true,
      update_pending: false,
      last_resync: null,
      next_resync: null,
    });
    const resynced = await ctl("POST", "/_mock/resync_remote_user", { user_id: dave });
    expect(resynced.body).toMatchObject({
      failing: true,
      marked_for_resync: true,
      last_resync: { ok: false, reason: "control" },
      next_resync: { reason: "retry" },
    });
  });

  it("refuse what the calls refuse with 400 M_INVALID_PARAM", async () => {
    const h = await startHarness();
    const ctl = (method: string, path: string, body?: unknown) => call(h, method, path, { body });
    const refused = [
      await ctl("POST", "/_mock/remote_servers", { server_name: "localhost" }),
      await ctl("POST", "/_mock/remote_servers", { server_name: "has space" }),
      await ctl("PUT", "/_mock/remote_server_reachable", {
        server_name: "unknown.example",
        reachable: false,
      }),
      await ctl("PUT", "/_mock/lose_device_list_updates", { user_id: "@alice:localhost", lose: true }),
      await ctl("GET", `/_mock/remote_cache?user_id=${encodeURIComponent("@nobody:unknown.example")}`),
      await ctl("POST", "/_mock/users", { localpart: "erin", server: "unknown.example" }),
    ];
    expect(refused.map((r) => [r.status, r.body.errcode])).toEqual(
      refused.map(() => [400, "M_INVALID_PARAM"]),
    );
    expect((await ctl("GET", "/_mock/remote_cache")).body.errcode).toBe("M_MISSING_PARAM");
    expect((await ctl("PUT", "/_mock/lose_device_list_updates", { user_id: "@a:b" })).body.errcode).toBe(
      "M_MISSING_PARAM",
    );
  });
});
