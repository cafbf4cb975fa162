import {
  DecryptionSettings,
  DehydratedDeviceKey,
  DeviceId,
  EncryptionSettings,
  initAsync,
  OlmMachine,
  RoomId,
  TrustRequirement,
  UserId,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { type AccountDataClient, ServerSideSecretStorageImpl } from "matrix-js-sdk/lib/secret-storage.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createE2eeClient, type E2eeClient } from "../../src/client.js";
import { claimMissingSessions } from "../../src/crypto/claim-sessions.js";
import { sendOutgoingRequest } from "../../src/crypto/send-outgoing-request.js";
import { DehydrationManager } from "../../src/dehydration/device/dehydration-manager.js";
import type { DehydratedDeviceRejection } from "../../src/dehydration/device/device-validation.js";
import type { DehydrationEvents } from "../../src/dehydration/device/events.js";
import {
  DEHYDRATED_DEVICE_PATH,
  DEHYDRATION_KEY_SECRET_NAMES,
  dehydratedDeviceEventsPath,
} from "../../src/dehydration/device/names.js";
import { buildDehydratedDeviceUpload } from "../../src/dehydration/device/upload-request.js";
import type { PutDehydratedDeviceBody } from "../../src/dehydration/device/wire-schemas.js";
import { createMatrixHttp } from "../../src/http/matrix-http.js";
import { createHttpAccountData } from "../../src/secret-storage/account-data-http.js";
import { decodeBase64 } from "../../src/secret-storage/base64.js";
import type { SecretStorageKey } from "../../src/secret-storage/secret-storage.js";
import { type ProfileName, type RunningMockServer, startMockServer } from "../../src/testing/index.js";
import { canonicalJson } from "../../src/testing/state/canonical-json.js";
import { watchDehydrationKey } from "./support/dehydration-drain-fixtures.js";
import { LeakWatch } from "./support/foundation-fixtures.js";

/**
 * MSC3814's device lifecycle end to end, per server profile: the SDK's transport and facade, real crypto-wasm
 * machines, the mock homeserver on a real socket. Alice sets up cross-signing and secret storage on
 * her first device and uploads a dehydrated device; a second login that has only her recovery key
 * restores everything from the server and rehydrates the device; a hostile server's injected
 * devices are refused and left in place; keys interoperate with matrix-js-sdk's secret storage.
 */

const profiles: ProfileName[] = ["synapse-1.157", "synapse-1.156", "tuwunel", "msc"];
const { stable: STABLE, unstable: UNSTABLE } = DEHYDRATION_KEY_SECRET_NAMES;
const PASSWORD = "correct horse battery staple";
const dummyAuth = async () => ({ type: "m.login.dummy" });

const loginResponse = z.looseObject({ user_id: z.string(), device_id: z.string(), access_token: z.string() });
const keysQueryResponse = z.looseObject({
  device_keys: z.record(z.string(), z.record(z.string(), z.looseObject({}))),
});
const devicesResponse = z.looseObject({ devices: z.array(z.looseObject({ device_id: z.string() })) });
const eventsPage = z.looseObject({ events: z.array(z.looseObject({ type: z.string() })) });

beforeAll(async () => {
  await initAsync();
});

/** Every client, manager and secret of this file: logs, errors and events must not show a secret. */
const leaks = new LeakWatch();

/** A dehydration manager over `client`'s own machine and transport, apart from its `dehydration`. */
function privateManager(client: E2eeClient): DehydrationManager {
  return new DehydrationManager({
    machine: client.machine,
    http: client.http,
    outgoingRequests: client.outgoingRequests,
    secretStorage: client.secretStorage,
    logger: leaks.logger,
  });
}

interface Login {
  client: E2eeClient;
  manager: DehydrationManager;
  seen: { name: keyof DehydrationEvents; payload: unknown }[];
}

function watch(manager: DehydrationManager): Login["seen"] {
  const seen: Login["seen"] = [];
  for (const name of ["uploaded", "deleted", "keyCached", "keyChanged", "validationFailed"] as const) {
    manager.events.on(name, (payload) => seen.push({ name, payload }));
  }
  leaks.watchEvents(manager.events, ["uploaded", "deleted", "keyCached", "keyChanged", "validationFailed"]);
  return seen;
}

describe.each(profiles)("dehydrated devices over HTTP on %s", (profile) => {
  let server: RunningMockServer;
  const clients: E2eeClient[] = [];
  let aliceId: string;
  let first: Login;
  let second: Login;
  let recoveryKey: string;
  let ssKey: SecretStorageKey;
  let uploadedId: string;
  let uploadedBody: { device_data: unknown };

  beforeAll(async () => {
    server = await startMockServer({ profile });
    const created = server.homeserver.control.createUser("alice", { password: PASSWORD })!;
    aliceId = created.userId;
    first = await open(created.deviceId, created.accessToken);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  async function open(deviceId: string, accessToken: string, userId = aliceId): Promise<Login> {
    leaks.secret(accessToken);
    const client = await createE2eeClient({
      baseUrl: server.url,
      userId,
      deviceId,
      accessToken,
      uiaCallback: dummyAuth,
      logger: leaks.logger,
    });
    leaks.watch(client);
    clients.push(client);
    // The facade's `dehydration` is the same manager type; a private one keeps the events apart.
    const manager = privateManager(client);
    return { client, manager, seen: watch(manager) };
  }

  async function login(user: string): Promise<Login> {
    const http = createMatrixHttp({ baseUrl: server.url });
    const session = await http.request({
      method: "POST",
      path: "/_matrix/client/v3/login",
      body: { type: "m.login.password", identifier: { type: "m.id.user", user }, password: PASSWORD },
      schema: loginResponse,
      unauthenticated: true,
    });
    return open(session.device_id, session.access_token, session.user_id);
  }

  /** The server's current device, read over HTTP as any client would. */
  async function serverDeviceId(client: E2eeClient): Promise<string | undefined> {
    return (await client.dehydration.fetchDevice())?.deviceId;
  }

  it("finds the feature supported", async () => {
    expect(await first.manager.isSupported()).toBe(true);
  });

  it("creates a device and uploads it in one PUT that the server lists as a cross-signed dehydrated device", async () => {
    const boot = await first.client.bootstrapCrossSigning({ createSecretStorageKey: true });
    recoveryKey = boot.recoveryKey!;
    ssKey = boot.secretStorageKey!;
    leaks.secret(recoveryKey);
    leaks.secretBytes(ssKey.key);

    server.homeserver.control.clearRequestLog();
    const { deviceId } = await first.manager.createAndUpload({ secretStorageKey: ssKey });
    uploadedId = deviceId;
    await watchDehydrationKey(leaks, first.client);
    const puts = server.homeserver.control
      .requestLog()
      .filter((e) => e.method === "PUT" && e.path === DEHYDRATED_DEVICE_PATH);
    expect(puts).toHaveLength(1);
    expect(first.seen.map((e) => e.name)).toEqual(["keyCached", "uploaded"]);
    expect(first.seen[1]!.payload).toEqual({ deviceId });

    const stored = server.homeserver.control.dehydratedDevice(aliceId);
    expect(stored?.deviceId).toBe(deviceId);
    uploadedBody = { device_data: stored!.deviceData };

    const query = await first.client.http.request({
      method: "POST",
      path: "/_matrix/client/v3/keys/query",
      body: { device_keys: { [aliceId]: [] } },
      schema: keysQueryResponse,
    });
    expect(query.device_keys[aliceId]?.[deviceId]).toMatchObject({ dehydrated: true, device_id: deviceId });
    const devices = await first.client.http.request({
      method: "GET",
      path: "/_matrix/client/v3/devices",
      schema: devicesResponse,
    });
    expect(devices.devices.map((d) => d.device_id)).toContain(deviceId);
    expect(await first.manager.checkDevice()).toEqual({ status: "valid", deviceId });
  });

  it("lets a new login holding only the recovery key restore the keys and rehydrate the device", async () => {
    second = await login("alice");
    const restored = await second.client.restoreFromRecoveryKey(recoveryKey);
    expect(restored.status).toEqual({ hasMaster: true, hasSelfSigning: true, hasUserSigning: true });
    const key = restored.secretStorageKey;

    expect(await second.manager.loadKey({ secretStorageKey: key })).toBe(true);
    const cached = await second.client.machine.dehydratedDevices().getDehydratedDeviceKey();
    expect(cached?.toBase64()).toBe(await first.client.secretStorage.get(UNSTABLE, ssKey));
    expect(second.seen).toEqual([{ name: "keyCached", payload: { source: "secret-storage" } }]);

    const fetched = await second.manager.fetchDevice();
    expect(fetched?.deviceId).toBe(uploadedId);
    const rehydrated = await second.manager.rehydrate({ secretStorageKey: key });
    expect(rehydrated?.deviceId).toBe(uploadedId);
    rehydrated?.free();
  });

  it("makes a new login without the recovery key refuse the device and upload nothing", async () => {
    // It cannot trust the identity that signed the device: no private keys, not verified.
    const stranger = await login("alice");
    server.homeserver.control.clearRequestLog();
    // Our own doing, not the server's: the message says to restore cross-signing first.
    const refused = await leaks.rejection(stranger.manager.rehydrate());
    expect(refused).toMatchObject({
      code: "cross_signing_not_restored",
      details: { deviceId: uploadedId, reasons: ["own_identity_not_trusted"] },
    });
    expect((refused as Error).message).toMatch(/restore cross-signing/i);
    expect((refused as Error).message).not.toMatch(/injecting/);
    expect(await leaks.rejection(stranger.manager.createAndUpload())).toMatchObject({
      code: "missing_self_signing_key",
    });
    expect(
      server.homeserver.control
        .requestLog()
        .some((e) => e.method !== "GET" && e.path === DEHYDRATED_DEVICE_PATH),
    ).toBe(false);
    expect(await serverDeviceId(stranger.client)).toBe(uploadedId);
  });

  it("imports a room key that was sent to the device while Alice was away, from one page of its events", async () => {
    const bobAccount = server.homeserver.control.createUser("bob", { password: PASSWORD })!;
    const bob = await open(bobAccount.deviceId, bobAccount.accessToken, bobAccount.userId);
    await bob.client.bootstrapCrossSigning({});
    await bob.client.machine.updateTrackedUsers([new UserId(aliceId)]);
    await bob.client.processOutgoingRequests();
    await claimMissingSessions(bob.client.machine, bob.client.http, [aliceId]);
    const room = new RoomId("!history:localhost");
    const shares = await bob.client.machine.shareRoomKey(
      room,
      [new UserId(aliceId)],
      new EncryptionSettings(),
    );
    for (const request of shares) await sendOutgoingRequest(bob.client.machine, bob.client.http, request);
    const encrypted = JSON.parse(
      await bob.client.machine.encryptRoomEvent(
        room,
        "m.room.message",
        JSON.stringify({ msgtype: "m.text", body: "while you were out" }),
      ),
    );

    // One page, fetched the way this profile serves it (the full drain has its own tests).
    const path = dehydratedDeviceEventsPath(uploadedId);
    const page = server.homeserver.profile.dehydratedEventsPost
      ? await second.client.http.request({ method: "POST", path, body: {}, schema: eventsPage })
      : await second.client.http.request({ method: "GET", path, schema: eventsPage });
    expect(page.events.length).toBeGreaterThan(0);

    const rehydrated = (await second.manager.rehydrate())!;
    const keys = await rehydrated.receiveEvents(page.events);
    rehydrated.free();
    expect(keys).toContainEqual(
      expect.objectContaining({
        roomId: "!history:localhost",
        senderKey: bob.client.machine.identityKeys.curve25519.toBase64(),
      }),
    );
    const event = {
      type: "m.room.encrypted",
      content: encrypted,
      sender: bobAccount.userId,
      event_id: "$history1",
      origin_server_ts: 1,
      room_id: "!history:localhost",
    };
    const decrypted = await second.client.machine.decryptRoomEvent(
      JSON.stringify(event),
      room,
      new DecryptionSettings(TrustRequirement.Untrusted),
    );
    expect(JSON.parse(decrypted.event).content.body).toBe("while you were out");
  });

  describe("a hostile server's injected device", () => {
    /** A dehydrated device body for Alice's user id made under another identity (not on the server). */
    async function foreignBody(): Promise<PutDehydratedDeviceBody> {
      const other = await OlmMachine.initialize(new UserId(aliceId), new DeviceId("ATTACKER"));
      (await other.bootstrapCrossSigning(true)).free();
      const body = await buildDehydratedDeviceUpload(other, new Uint8Array(32).fill(1), "Dehydrated device");
      other.close();
      return body;
    }

    function inject(
      body: Pick<PutDehydratedDeviceBody, "device_id" | "device_data" | "device_keys"> &
        Partial<PutDehydratedDeviceBody>,
    ) {
      server.homeserver.control.injectDehydratedDevice(aliceId, {
        deviceId: body.device_id,
        deviceData: body.device_data,
        deviceKeys: body.device_keys,
        ...(body.one_time_keys ? { oneTimeKeys: body.one_time_keys } : {}),
        ...(body.fallback_keys ? { fallbackKeys: body.fallback_keys } : {}),
      });
    }

    async function expectRefusedAndKept(deviceId: string, reasons: DehydratedDeviceRejection[]) {
      second.seen.length = 0;
      const refusal = second.manager.rehydrate({ secretStorageKey: ssKey });
      expect(await leaks.rejection(refusal)).toMatchObject({
        name: "DehydrationError",
        code: "device_rejected",
        message: expect.stringMatching(/may be injecting a device/),
        details: { deviceId, reasons },
      });
      expect(second.seen).toEqual([{ name: "validationFailed", payload: { deviceId, reasons } }]);
      // Nothing deleted: the server still has the device, in its state and over HTTP.
      expect(server.homeserver.control.dehydratedDevice(aliceId)?.deviceId).toBe(deviceId);
      expect(await serverDeviceId(second.client)).toBe(deviceId);
      expect(server.homeserver.control.requestLog().some((e) => e.method === "DELETE")).toBe(false);
    }

    it("that is unsigned is refused and left on the server", async () => {
      const body = await foreignBody();
      const own = `ed25519:${body.device_id}`;
      body.device_keys.signatures = { [aliceId]: { [own]: body.device_keys.signatures[aliceId]![own]! } };
      server.homeserver.control.clearRequestLog();
      inject(body);
      await expectRefusedAndKept(body.device_id, ["not_cross_signed_by_owner"]);
    });

    it("that is signed by another identity is refused and left on the server", async () => {
      const body = await foreignBody();
      server.homeserver.control.clearRequestLog();
      inject(body);
      await expectRefusedAndKept(body.device_id, ["not_cross_signed_by_owner"]);
    });

    it("whose id is not its Curve25519 key is refused and left on the server, though cross-signed and openable", async () => {
      // A device named NOTITSKEY with valid self-signed keys flagged dehydrated, paired with the
      // genuine device_data (which Alice's key opens: crypto-wasm does not notice the wrong id).
      const impostor = await OlmMachine.initialize(new UserId(aliceId), new DeviceId("NOTITSKEY"));
      const ids = impostor.identityKeys;
      const unsigned = {
        algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        device_id: "NOTITSKEY",
        user_id: aliceId,
        keys: {
          "curve25519:NOTITSKEY": ids.curve25519.toBase64(),
          "ed25519:NOTITSKEY": ids.ed25519.toBase64(),
        },
        dehydrated: true,
      };
      const signatures = JSON.parse((await impostor.sign(canonicalJson(unsigned))).asJSON());
      impostor.close();
      server.homeserver.control.clearRequestLog();
      inject({
        device_id: "NOTITSKEY",
        device_data: uploadedBody.device_data as PutDehydratedDeviceBody["device_data"],
        device_keys: { ...unsigned, signatures } as PutDehydratedDeviceBody["device_keys"],
      });
      // Alice's first device signs it with her real self-signing key, as it would any own device.
      const machine = first.client.machine;
      await sendOutgoingRequest(machine, first.client.http, machine.queryKeysForUsers([new UserId(aliceId)]));
      const device = (await machine.getDevice(new UserId(aliceId), new DeviceId("NOTITSKEY")))!;
      const signature = await device.verify();
      await first.client.http.request({
        method: "POST",
        path: "/_matrix/client/v3/keys/signatures/upload",
        body: JSON.parse(signature.body),
        schema: z.looseObject({}),
      });
      await expectRefusedAndKept("NOTITSKEY", ["id_not_curve25519_key"]);
    });
  });

  describe("interop with matrix-js-sdk's secret storage over the same account data", () => {
    function elementSecretStorage(client: E2eeClient, key: SecretStorageKey) {
      const accountData = createHttpAccountData(client.http, aliceId);
      const adapter = {
        getAccountDataFromServer: async (type: string) => (await accountData.get(type)) ?? null,
        setAccountData: async (type: string, content: Record<string, unknown>) => {
          await accountData.set(type, content);
          return {};
        },
      };
      return new ServerSideSecretStorageImpl(adapter as unknown as AccountDataClient, {
        getSecretStorageKey: async ({ keys }) =>
          keys[key.keyId] === undefined ? null : [key.keyId, Uint8Array.from(key.key)],
      });
    }

    it("reads a key that matrix-js-sdk stored under the unstable name only, as Element does", async () => {
      const element = elementSecretStorage(first.client, ssKey);
      const theirKey = globalThis.crypto.getRandomValues(new Uint8Array(32));
      leaks.secretBytes(theirKey);
      await element.store(UNSTABLE, Buffer.from(theirKey).toString("base64").replace(/=+$/, ""));
      // With no device on the server to decide between the two names, the reader takes the
      // unstable name's key (Element's).
      await first.manager.delete();
      second.seen.length = 0;
      expect(await second.manager.loadKey({ secretStorageKey: ssKey })).toBe(true);
      const cached = await second.client.machine.dehydratedDevices().getDehydratedDeviceKey();
      expect(decodeBase64(cached!.toBase64())).toEqual(theirKey);
      expect(second.seen.map((e) => e.name)).toEqual(["keyChanged", "keyCached"]);

      // Our next upload uses Element's key and writes it under the stable name too.
      const { deviceId } = await second.manager.createAndUpload({ secretStorageKey: ssKey });
      expect(await second.client.secretStorage.get(STABLE, ssKey)).toBe(await element.get(UNSTABLE));
      expect(await serverDeviceId(second.client)).toBe(deviceId);
    });

    it("lets matrix-js-sdk read the key we stored, and that key opens our device", async () => {
      await first.manager.resetKey({ secretStorageKey: ssKey });
      await watchDehydrationKey(leaks, first.client);
      const { deviceId } = await first.manager.createAndUpload({ secretStorageKey: ssKey });
      const element = elementSecretStorage(second.client, ssKey);
      const text = await element.get(UNSTABLE);
      expect(text).toBe(await first.client.secretStorage.get(STABLE, ssKey));
      const bytes = decodeBase64(text!)!;
      expect(bytes).toHaveLength(32);
      // What Element does with it: crypto-wasm rehydrates the server's device with those bytes.
      const device = (await second.manager.fetchDevice())!;
      expect(device.deviceId).toBe(deviceId);
      const opened = await second.client.machine
        .dehydratedDevices()
        .rehydrate(
          DehydratedDeviceKey.createKeyFromArray(bytes),
          new DeviceId(deviceId),
          JSON.stringify(device.deviceData),
        );
      opened.free();
    });
  });

  it("drains the device, then replaces it, when Alice resets her cross-signing identity", async () => {
    const { deviceId: before } = await first.manager.createAndUpload({ secretStorageKey: ssKey });
    server.homeserver.control.clearRequestLog();
    const reset = await first.client.bootstrapCrossSigning({ reset: true, secretStorageKey: ssKey });
    const after = await serverDeviceId(first.client);
    expect(after).not.toBe(before);
    expect(reset.dehydratedDevice).toEqual({
      outcome: "replaced",
      previousDeviceId: before,
      deviceId: after,
    });

    // On the wire: the old device's inbox was read before the new identity went up, and the
    // device was replaced only after that.
    const log = server.homeserver.control.requestLog();
    const at = (match: (e: (typeof log)[number]) => boolean) => log.findIndex(match);
    const drained = at((e) => e.path === dehydratedDeviceEventsPath(before) && e.status === 200);
    const newIdentity = at((e) => e.path.endsWith("/keys/device_signing/upload") && e.status === 200);
    const replaced = at((e) => e.method === "PUT" && e.path === DEHYDRATED_DEVICE_PATH);
    expect(drained).toBeGreaterThanOrEqual(0);
    expect(drained).toBeLessThan(newIdentity);
    expect(newIdentity).toBeLessThan(replaced);
    expect(log.filter((e) => e.method === "DELETE")).toEqual([]);

    // The manager that uploaded the old device sees the identity change; the new device validates.
    expect(await first.manager.identityChangedSinceUpload()).toBe(true);
    expect(await first.manager.checkDevice()).toEqual({ status: "valid", deviceId: after });
    expect(await first.manager.afterIdentityReset({ secretStorageKey: ssKey })).toBe("kept");
  });

  it("deletes the device, and a second delete finds none", async () => {
    const current = await serverDeviceId(first.client);
    first.seen.length = 0;
    expect(await first.manager.delete()).toBe(current);
    expect(first.seen).toEqual([{ name: "deleted", payload: { deviceId: current, reason: "requested" } }]);
    expect(server.homeserver.control.dehydratedDevice(aliceId)).toBeUndefined();
    expect(await first.manager.delete()).toBeUndefined();
    expect(await first.manager.afterIdentityReset()).toBe("none");
  });

  it("leaks no key, recovery key or access token into logs, errors or events", async () => {
    for (const client of clients) await watchDehydrationKey(leaks, client);
    expect(leaks.errors.length).toBeGreaterThan(0);
    expect(leaks.events.some((e) => e.name === "validationFailed")).toBe(true);
    leaks.expectNoLeaks();
  });
});

describe("a server with dehydrated devices switched off", () => {
  let server: RunningMockServer;
  let client: E2eeClient;

  beforeAll(async () => {
    server = await startMockServer({ profile: "synapse-1.157", overrides: { dehydratedDevices: false } });
    const user = server.homeserver.control.createUser("carol", { password: PASSWORD })!;
    leaks.secret(user.accessToken);
    client = await createE2eeClient({
      baseUrl: server.url,
      userId: user.userId,
      deviceId: user.deviceId,
      accessToken: user.accessToken,
      uiaCallback: dummyAuth,
      logger: leaks.logger,
    });
    leaks.watch(client);
  });

  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it("is reported unsupported, and every call says so without side effects", async () => {
    const manager = privateManager(client);
    expect(await manager.isSupported()).toBe(false);
    expect(await manager.fetchDevice()).toBeUndefined();
    expect(await manager.rehydrate()).toBeUndefined();
    expect(await manager.delete()).toBeUndefined();
    const boot = await client.bootstrapCrossSigning({ createSecretStorageKey: true });
    leaks.secret(boot.recoveryKey);
    leaks.secretBytes(boot.secretStorageKey!.key);
    expect(
      await leaks.rejection(manager.createAndUpload({ secretStorageKey: boot.secretStorageKey! })),
    ).toMatchObject({
      name: "DehydrationError",
      code: "unsupported",
    });
    // No key was made for a device that cannot exist.
    expect(await client.secretStorage.get(UNSTABLE, boot.secretStorageKey!)).toBeUndefined();
    leaks.expectNoLeaks();
  });
});
