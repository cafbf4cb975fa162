import { DeviceId, initAsync, OlmMachine, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { E2eeClientEvents } from "../../src/client-options.js";
import { DEHYDRATED_DEVICE_PATH, dehydratedDeviceEventsPath } from "../../src/dehydration/device/names.js";
import { buildDehydratedDeviceUpload } from "../../src/dehydration/device/upload-request.js";
import type { SecretStorageKey } from "../../src/secret-storage/secret-storage.js";
import {
  type RunningMockServer,
  type ScriptedFailureSpec,
  startMockServer,
} from "../../src/testing/index.js";
import { inClient, type TestClient } from "./support/client-mode.js";
import {
  type Alice,
  aliceWithDehydratedDevice,
  bobSharesRoomKeys,
  decryptable,
  newLogin,
  openClient,
  PASSWORD,
  payloadsOf,
  recordEvents,
  watchAlice,
  watchDehydrationKey,
} from "./support/dehydration-drain-fixtures.js";
import { LeakWatch } from "./support/foundation-fixtures.js";

/**
 * An identity reset through the facade (`crossSigning.bootstrap({ reset: true })`) and the user's
 * dehydrated device, over a real socket with real crypto-wasm machines: the device is drained while
 * it still validates, the identity is reset, and only then is the device replaced by one the new
 * identity signs — so room keys queued on it survive and senders keep encrypting to it. When the
 * drain cannot complete, the identity is still reset, the old device is kept and reported stale,
 * and the app's two ways out (`replaceNow()`, which drains and then replaces; or the same, forced,
 * when the drain cannot complete) both work.
 */

const EVENTS_PATTERN = `${DEHYDRATED_DEVICE_PATH}/{deviceId}/events`;
const fastRetry = { retry: { baseDelayMs: 1, maxDelayMs: 2, maxAttempts: 2 } };

beforeAll(async () => {
  await initAsync();
});

const watch = new LeakWatch();

describe("resetting the identity of a user with a dehydrated device", () => {
  let server: RunningMockServer;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    server = await startMockServer({ profile: "synapse-1.157" });
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  /** A user who went offline with room keys from a sender waiting on her dehydrated device. */
  async function offlineUser(localpart: string, rooms: number) {
    const user = await aliceWithDehydratedDevice(server, localpart, watch);
    watchAlice(watch, user);
    const messages = await bobSharesRoomKeys(server, user.userId, rooms, `${localpart}-sender`, watch);
    expect(inbox(user.userId, user.dehydratedDeviceId)).toHaveLength(rooms);
    return { user, messages };
  }

  /** Her next login, restored from the recovery key (so it may reset the identity). */
  async function login(user: Alice, options: Parameters<typeof newLogin>[2] = {}) {
    const opened = await newLogin(server, user, { watch, ...options });
    clients.push(opened.client);
    // Probing decryption before the drain would otherwise queue room-key requests to her devices.
    await inClient(opened.client, "setRoomKeyRequests", false);
    return opened;
  }

  const inbox = (userId: string, deviceId: string) =>
    server.homeserver.state.toDevice.inbox(userId, deviceId);
  const serverDevice = (userId: string) => server.homeserver.control.dehydratedDevice(userId)?.deviceId;
  const writes = () =>
    server.homeserver.control
      .requestLog()
      .filter((e) => e.path === DEHYDRATED_DEVICE_PATH && (e.method === "PUT" || e.method === "DELETE"));

  /** Resets the identity while the server answers `failure`; the server recovers afterwards. */
  async function resetWhileFailing(
    client: TestClient,
    secretStorageKey: SecretStorageKey,
    failure: ScriptedFailureSpec,
  ) {
    server.homeserver.control.scriptFailure(failure);
    try {
      return await client.crossSigning.bootstrap({ reset: true, secretStorageKey });
    } finally {
      server.homeserver.control.clearScriptedFailures();
    }
  }

  function staleEvents(client: TestClient): E2eeClientEvents["dehydration.stale"][] {
    const seen: E2eeClientEvents["dehydration.stale"][] = [];
    client.events.on("dehydration.stale", (e) => seen.push(e));
    return seen;
  }

  /** The server's device as `client` judges it. */
  const deviceStatus = async (client: TestClient) => (await client.dehydration.status()).device;

  /**
   * Whether a new sender encrypts a room key to `deviceId`. Senders withhold keys from a dehydrated
   * device its owner's current identity did not sign, and tell it so (`m.room_key.withheld`).
   */
  async function senderEncryptsTo(userId: string, deviceId: string, localpart: string): Promise<boolean> {
    const before = inbox(userId, deviceId).length;
    await bobSharesRoomKeys(server, userId, 1, localpart, watch);
    const types = inbox(userId, deviceId)
      .slice(before)
      .map((e) => e.event.type);
    expect(types).toHaveLength(1);
    return types[0] === "m.room.encrypted";
  }

  it("drains the device, then resets the identity, then replaces the device: no key is lost", async () => {
    const { user, messages } = await offlineUser("alice", 3);
    const { client, secretStorageKey } = await login(user);
    const stale = staleEvents(client);
    expect(await decryptable(client, messages)).toBe(0);
    server.homeserver.control.clearRequestLog();

    const reset = await client.crossSigning.bootstrap({ reset: true, secretStorageKey });

    const replacement = serverDevice(user.userId)!;
    expect(replacement).not.toBe(user.dehydratedDeviceId);
    expect(reset.dehydratedDevice).toEqual({
      outcome: "replaced",
      previousDeviceId: user.dehydratedDeviceId,
      deviceId: replacement,
    });
    expect(stale).toEqual([]);
    // The keys queued on the old device were imported before it went.
    expect(await decryptable(client, messages)).toBe(3);
    // Drain, new identity, replacement — in that order on the wire, and nothing deleted on its own.
    const log = server.homeserver.control.requestLog();
    const at = (match: (e: (typeof log)[number]) => boolean) => log.findIndex(match);
    const lastPage = log.findLastIndex((e) => e.path === dehydratedDeviceEventsPath(user.dehydratedDeviceId));
    const identity = at((e) => e.path.endsWith("/keys/device_signing/upload") && e.status === 200);
    expect(lastPage).toBeGreaterThanOrEqual(0);
    expect(lastPage).toBeLessThan(identity);
    expect(writes().map((e) => e.method)).toEqual(["PUT"]);
    expect(at((e) => e.method === "PUT" && e.path === DEHYDRATED_DEVICE_PATH)).toBeGreaterThan(identity);

    // The new device validates under the new identity, senders encrypt to it, and the rotation
    // counts it as uploaded here (it will not take it for another client's).
    const status = await client.dehydration.status();
    expect(status.device).toEqual({ status: "valid", deviceId: replacement });
    expect(await senderEncryptsTo(user.userId, replacement, "alice-later-sender")).toBe(true);
    expect(status.rotation.record).toMatchObject({ deviceId: replacement, uploadedHere: true });
    await watchDehydrationKey(watch, client);
  });

  it("keeps the old device and reports it stale when the drain fails; replacing it now drains it first and loses nothing", async () => {
    const { user, messages } = await offlineUser("bea", 2);
    const { client, secretStorageKey } = await login(user, fastRetry);
    const stale = staleEvents(client);
    server.homeserver.control.clearRequestLog();
    const reset = await resetWhileFailing(client, secretStorageKey, {
      path: EVENTS_PATTERN,
      status: 500,
      times: 100,
    });

    expect(reset.dehydratedDevice).toMatchObject({
      outcome: "stale",
      deviceId: user.dehydratedDeviceId,
      reason: "drain_failed",
    });
    const error = reset.dehydratedDevice?.outcome === "stale" ? reset.dehydratedDevice.error : undefined;
    // Results and events carry the error as plain data.
    expect(error).toMatchObject({ name: "DrainError", code: "fetch_failed" });
    expect(structuredClone(error)).toEqual(error);
    expect(stale).toEqual([{ deviceId: user.dehydratedDeviceId, reason: "drain_failed", error }]);
    // The identity was reset all the same: the device is now signed by the previous one, and
    // senders withhold from it. It is still on the server with its inbox: nothing was written.
    expect(await deviceStatus(client)).toMatchObject({
      status: "invalid",
      deviceId: user.dehydratedDeviceId,
      reasons: ["not_cross_signed_by_owner"],
      signedByPreviousIdentity: true,
    });
    expect(writes()).toEqual([]);
    expect(serverDevice(user.userId)).toBe(user.dehydratedDeviceId);
    expect(await decryptable(client, messages)).toBe(0);
    expect(await senderEncryptsTo(user.userId, user.dehydratedDeviceId, "bea-withheld-sender")).toBe(false);

    // The app's way out: `replaceNow()` drains the device (this session still opens the device it
    // validated under the previous identity) and only then replaces it.
    const seen = recordEvents(client, (name) => name.startsWith("dehydration."));
    server.homeserver.control.clearRequestLog();
    const replaced = await client.dehydration.replaceNow({ secretStorageKey });
    expect(replaced).toMatchObject({ action: "replaced", previousDeviceId: user.dehydratedDeviceId });
    const replacement = serverDevice(user.userId)!;
    expect(replacement).toBe(replaced.deviceId);
    expect(replacement).not.toBe(user.dehydratedDeviceId);
    expect(await decryptable(client, messages)).toBe(2);
    // The drain completed, with both room keys, before the replacement; on the wire too.
    const names = seen.map((e) => e.name);
    expect(names.indexOf("dehydration.drain.completed")).toBeGreaterThanOrEqual(0);
    expect(names.indexOf("dehydration.drain.completed")).toBeLessThan(names.indexOf("dehydration.uploaded"));
    expect(payloadsOf(seen, "dehydration.drain.completed")).toMatchObject([
      { deviceId: user.dehydratedDeviceId, run: { roomKeys: 2 } },
    ]);
    expect(payloadsOf(seen, "dehydration.rotation.replaced")).toEqual([
      { previousDeviceId: user.dehydratedDeviceId, deviceId: replacement, reason: "requested" },
    ]);
    const log = server.homeserver.control.requestLog();
    const lastPage = log.findLastIndex((e) => e.path === dehydratedDeviceEventsPath(user.dehydratedDeviceId));
    expect(lastPage).toBeGreaterThanOrEqual(0);
    expect(lastPage).toBeLessThan(
      log.findIndex((e) => e.method === "PUT" && e.path === DEHYDRATED_DEVICE_PATH),
    );
    expect(writes().map((e) => e.method)).toEqual(["PUT"]);
    expect(await deviceStatus(client)).toEqual({ status: "valid", deviceId: replacement });
    watch.errors.push(error);
  });

  it("keeps the old device and reports it stale when the drain is truncated; the app may force the replacement", async () => {
    const { user } = await offlineUser("cleo", 2);
    const { client, secretStorageKey } = await login(user);
    const stale = staleEvents(client);
    const control = server.homeserver.control;
    control.setDehydratedEventsFault({ kind: "repeat-cursor", userId: user.userId });
    try {
      control.clearRequestLog();
      const reset = await client.crossSigning.bootstrap({ reset: true, secretStorageKey });
      const expected = {
        deviceId: user.dehydratedDeviceId,
        reason: "drain_truncated",
        error: undefined,
      };
      expect(reset.dehydratedDevice).toEqual({ outcome: "stale", ...expected });
      expect(stale).toEqual([expected]);
      expect(writes()).toEqual([]);
      expect(serverDevice(user.userId)).toBe(user.dehydratedDeviceId);

      // Giving up on whatever the server will not hand over: a forced replacement.
      // Unforced, it refuses: the drain is still truncated, and the device stays.
      expect(await watch.rejection(client.dehydration.replaceNow({ secretStorageKey }))).toMatchObject({
        code: "drain_incomplete",
        details: { deviceId: user.dehydratedDeviceId },
      });
      expect(writes()).toEqual([]);
      const forced = await client.dehydration.replaceNow({ force: true, secretStorageKey });
      expect(forced).toMatchObject({ action: "replaced", previousDeviceId: user.dehydratedDeviceId });
      expect(serverDevice(user.userId)).toBe(forced.deviceId);
      expect(await deviceStatus(client)).toEqual({ status: "valid", deviceId: forced.deviceId });
    } finally {
      control.clearDehydratedEventsFault();
    }
  });

  it("keeps the old device and reports it stale when this login holds no dehydration key", async () => {
    const { user } = await offlineUser("dora", 1);
    const { client } = await login(user);
    const stale = staleEvents(client);
    server.homeserver.control.clearRequestLog();
    // No secret-storage key given, none cached: the device cannot be opened here.
    const reset = await client.crossSigning.bootstrap({ reset: true, createSecretStorageKey: true });
    watch.secret(reset.recoveryKey);
    watch.secretBytes(reset.secretStorageKey!.key);

    expect(reset.dehydratedDevice).toMatchObject({
      outcome: "stale",
      deviceId: user.dehydratedDeviceId,
      reason: "cannot_open",
      error: expect.objectContaining({
        name: "DrainError",
        code: "key_unavailable",
        cause: expect.objectContaining({ name: "DehydrationError", code: "no_key" }),
      }),
    });
    expect(stale.map((e) => e.reason)).toEqual(["cannot_open"]);
    expect(writes()).toEqual([]);
    expect(serverDevice(user.userId)).toBe(user.dehydratedDeviceId);
    expect(reset.storedInSecretStorage).toEqual(["master", "selfSigning", "userSigning"]);
  });

  it("leaves a device that fails validation alone: it is not provably the user's", async () => {
    const { user } = await offlineUser("ella", 1);
    // The server swaps in a device made under another identity.
    const other = await OlmMachine.initialize(new UserId(user.userId), new DeviceId("ATTACKER"));
    (await other.bootstrapCrossSigning(true)).free();
    const body = await buildDehydratedDeviceUpload(other, new Uint8Array(32).fill(7), "Dehydrated device");
    other.close();
    server.homeserver.control.injectDehydratedDevice(user.userId, {
      deviceId: body.device_id,
      deviceData: body.device_data,
      deviceKeys: body.device_keys,
    });
    const { client, secretStorageKey } = await login(user);
    const stale = staleEvents(client);
    server.homeserver.control.clearRequestLog();

    const reset = await client.crossSigning.bootstrap({ reset: true, secretStorageKey });
    expect(reset.dehydratedDevice).toMatchObject({
      outcome: "stale",
      deviceId: body.device_id,
      reason: "rejected",
      error: expect.objectContaining({ code: "device_rejected" }),
    });
    expect(stale.map((e) => e.reason)).toEqual(["rejected"]);
    expect(writes()).toEqual([]);
    expect(serverDevice(user.userId)).toBe(body.device_id);
  });

  it("reports the device stale, kept and drained, when its replacement cannot be uploaded", async () => {
    const { user, messages } = await offlineUser("fay", 2);
    const { client, secretStorageKey } = await login(user, fastRetry);
    const stale = staleEvents(client);
    const reset = await resetWhileFailing(client, secretStorageKey, {
      method: "PUT",
      path: DEHYDRATED_DEVICE_PATH,
      status: 500,
      times: 100,
    });
    expect(reset.dehydratedDevice).toMatchObject({
      outcome: "stale",
      deviceId: user.dehydratedDeviceId,
      reason: "replace_failed",
    });
    expect(stale.map((e) => e.reason)).toEqual(["replace_failed"]);
    expect(await decryptable(client, messages)).toBe(2);
    expect(serverDevice(user.userId)).toBe(user.dehydratedDeviceId);
    // Drained already: replacing it now re-reads only the drain's end, imports nothing new, loses nothing.
    const drains = recordEvents(client, (name) => name === "dehydration.drain.completed");
    const replaced = await client.dehydration.replaceNow({ secretStorageKey });
    expect(replaced).toMatchObject({ action: "replaced", previousDeviceId: user.dehydratedDeviceId });
    expect(replaced.deviceId).not.toBe(user.dehydratedDeviceId);
    expect(serverDevice(user.userId)).toBe(replaced.deviceId);
    expect(payloadsOf(drains, "dehydration.drain.completed")).toMatchObject([
      { deviceId: user.dehydratedDeviceId, run: { roomKeys: 0 } },
    ]);
    expect(await deviceStatus(client)).toEqual({ status: "valid", deviceId: replaced.deviceId });
  });

  it("does nothing to dehydrated devices when the user has none", async () => {
    const created = server.homeserver.control.createUser("gus", { password: PASSWORD })!;
    const gus = await openClient(server, created, { watch });
    clients.push(gus);
    await gus.crossSigning.bootstrap({});
    server.homeserver.control.clearRequestLog();
    const reset = await gus.crossSigning.bootstrap({ reset: true });
    expect(reset.dehydratedDevice).toEqual({ outcome: "none" });
    expect(writes()).toEqual([]);
    expect(serverDevice(created.userId)).toBeUndefined();
  });

  it("leaks no key, recovery key or access token into logs, errors or events", async () => {
    for (const client of clients) await watchDehydrationKey(watch, client);
    expect(watch.events.some((e) => e.name === "dehydration.stale")).toBe(true);
    watch.expectNoLeaks();
  });
});
