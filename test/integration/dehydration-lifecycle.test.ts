import {
  DehydratedDeviceKey,
  DeviceId,
  initAsync,
  OlmMachine,
  UserId,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { type AccountDataClient, ServerSideSecretStorageImpl } from "matrix-js-sdk/lib/secret-storage.js";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { clientInternals } from "../../src/client.js";
import { sendOutgoingRequest } from "../../src/crypto/send-outgoing-request.js";
import { DehydrationManager } from "../../src/dehydration/device/dehydration-manager.js";
import type { DehydratedDeviceRejection } from "../../src/dehydration/device/device-validation.js";
import {
  DEHYDRATED_DEVICE_PATH,
  DEHYDRATION_KEY_SECRET_NAMES,
  dehydratedDeviceEventsPath,
} from "../../src/dehydration/device/names.js";
import { buildDehydratedDeviceUpload } from "../../src/dehydration/device/upload-request.js";
import type { PutDehydratedDeviceBody } from "../../src/dehydration/device/wire-schemas.js";
import { toErrorInfo } from "../../src/errors/error-info.js";
import { createHttpAccountData } from "../../src/secret-storage/account-data-http.js";
import { decodeBase64 } from "../../src/secret-storage/base64.js";
import type { SecretStorageKey } from "../../src/secret-storage/secret-storage.js";
import { type ProfileName, type RunningMockServer, startMockServer } from "../../src/testing/index.js";
import { canonicalJson } from "../../src/testing/state/canonical-json.js";
import { inClient, inThreadClient, itInThread, type TestClient } from "./support/client-mode.js";
import {
  bobSharesRoomKeys,
  type ClientEvent,
  decryptable,
  openClient,
  PASSWORD,
  passwordLogin,
  payloadsOf,
  recordEvents,
  type Session,
  sessionHttp,
  watchDehydrationKey,
} from "./support/dehydration-drain-fixtures.js";
import { LeakWatch } from "./support/foundation-fixtures.js";

/**
 * MSC3814's device lifecycle end to end, per server profile: the SDK's transport and facade, real crypto-wasm
 * machines, the mock homeserver on a real socket. Alice sets up cross-signing and secret storage on
 * her first device and uploads a dehydrated device; a second login that has only her recovery key
 * restores everything from the server and rehydrates the device; a hostile server's injected
 * devices are refused and left in place; keys interoperate with matrix-js-sdk's secret storage.
 *
 * Every test makes its own Alice (a new user on the profile's server) and the logins it needs, so
 * each runs alone; after each, its logs, errors and events are checked for secrets.
 */

const profiles: ProfileName[] = ["synapse-1.157", "synapse-1.156", "tuwunel", "msc"];
const { stable: STABLE, unstable: UNSTABLE } = DEHYDRATION_KEY_SECRET_NAMES;

const keysQueryResponse = z.looseObject({
  device_keys: z.record(z.string(), z.record(z.string(), z.looseObject({}))),
});
const devicesResponse = z.looseObject({ devices: z.array(z.looseObject({ device_id: z.string() })) });
const eventsPage = z.looseObject({ events: z.array(z.looseObject({ type: z.string() })) });
const dehydratedDeviceResponse = z.looseObject({ device_id: z.string(), device_data: z.looseObject({}) });

beforeAll(async () => {
  await initAsync();
});

/** A client of the test, and what `client.events` told it about the dehydrated device (`dehydration.*`). */
interface Login {
  client: TestClient;
  session: Session;
  seen: ClientEvent[];
}

/** Alice after setting up cross-signing and secret storage on her first device. */
interface Alice {
  userId: string;
  first: Login;
  recoveryKey: string;
  ssKey: SecretStorageKey;
}

/** Alice once her first device has uploaded a dehydrated device. */
interface AliceWithDevice extends Alice {
  deviceId: string;
  /** The device's `device_data` as the server keeps it. */
  deviceData: unknown;
}

/**
 * What every test of a server gets, fresh: a leak watch, and the clients it opens — each closed
 * after the test, once the test's logs, errors and events are shown to hold none of its secrets.
 */
function usePerTestClients(getServer: () => RunningMockServer) {
  let users = 0;
  const state = { leaks: new LeakWatch(), clients: [] as TestClient[] };

  beforeEach(() => {
    state.leaks = new LeakWatch();
    state.clients = [];
  });

  afterEach(async () => {
    try {
      for (const client of state.clients) await watchDehydrationKey(state.leaks, client);
      state.leaks.expectNoLeaks();
    } finally {
      await Promise.all(state.clients.map((c) => c.close()));
    }
  });

  async function open(session: Session): Promise<Login> {
    const client = await openClient(getServer(), session, { watch: state.leaks });
    state.clients.push(client);
    return { client, session, seen: recordEvents(client, (name) => name.startsWith("dehydration.")) };
  }

  /** A new user of the server with one device, through the mock's control API (set-up, not under test). */
  function createUser(localpart: string): Session {
    const created = getServer().homeserver.control.createUser(`${localpart}-${++users}`, {
      password: PASSWORD,
    });
    if (!created) throw new Error(`${localpart} exists`);
    return created;
  }

  /** A new login of `userId` over `POST /login`, as a new browser would make. */
  async function login(userId: string): Promise<Login> {
    return open(await passwordLogin(getServer(), userId));
  }

  async function alice(): Promise<Alice> {
    const created = createUser("alice");
    const first = await open(created);
    const boot = await first.client.crossSigning.bootstrap({ createSecretStorageKey: true });
    state.leaks.secret(boot.recoveryKey);
    state.leaks.secretBytes(boot.secretStorageKey!.key);
    return { userId: created.userId, first, recoveryKey: boot.recoveryKey!, ssKey: boot.secretStorageKey! };
  }

  async function aliceWithDevice(): Promise<AliceWithDevice> {
    const set = await alice();
    // With no device on the server, a replacement is the first upload.
    const { deviceId } = await set.first.client.dehydration.replaceNow({ secretStorageKey: set.ssKey });
    set.first.seen.length = 0;
    const stored = getServer().homeserver.control.dehydratedDevice(set.userId);
    return { ...set, deviceId, deviceData: stored!.deviceData };
  }

  /** A new login of Alice that restored her cross-signing keys from the recovery key. */
  async function restoredLogin(of: Alice): Promise<Login & { key: SecretStorageKey }> {
    const opened = await login(of.userId);
    const restored = await opened.client.crossSigning.restoreFromRecoveryKey(of.recoveryKey);
    return { ...opened, key: restored.secretStorageKey };
  }

  return {
    get leaks() {
      return state.leaks;
    },
    get clients(): readonly TestClient[] {
      return state.clients;
    },
    open,
    createUser,
    login,
    alice,
    aliceWithDevice,
    restoredLogin,
  };
}

/** The server's current device id as `client` reads it over HTTP (valid or not), if it has one. */
async function serverDeviceId(client: TestClient): Promise<string | undefined> {
  const { device } = await client.dehydration.status();
  return device.status === "none" ? undefined : device.deviceId;
}

/** The dehydration key cached in `client`'s crypto store, in base64 as secret storage holds it. */
async function cachedKey(client: TestClient): Promise<string | undefined> {
  return inClient(client, "cachedDehydrationKey");
}

describe.each(profiles)("dehydrated devices over HTTP on %s", (profile) => {
  let server: RunningMockServer;
  const t = usePerTestClients(() => server);

  beforeAll(async () => {
    server = await startMockServer({ profile });
  });

  afterAll(async () => {
    await server?.close();
  });

  it("finds the feature supported", async () => {
    const { client } = await t.open(t.createUser("alice"));
    expect(await client.dehydration.isSupported()).toBe(true);
  });

  it("creates a device and uploads it in one PUT that the server lists as a cross-signed dehydrated device", async () => {
    const alice = await t.alice();
    const { first } = alice;
    server.homeserver.control.clearRequestLog();
    // With no device on the server, `replaceNow()` uploads the first one: nothing to drain.
    const { deviceId } = await first.client.dehydration.replaceNow({ secretStorageKey: alice.ssKey });
    const puts = server.homeserver.control
      .requestLog()
      .filter((e) => e.method === "PUT" && e.path === DEHYDRATED_DEVICE_PATH);
    expect(puts).toHaveLength(1);
    expect(first.seen).toEqual([
      { name: "dehydration.keyCached", payload: { source: "created" } },
      { name: "dehydration.uploaded", payload: { deviceId } },
      {
        name: "dehydration.rotation.replaced",
        payload: { previousDeviceId: undefined, deviceId, reason: "no_device" },
      },
    ]);

    const stored = server.homeserver.control.dehydratedDevice(alice.userId);
    expect(stored?.deviceId).toBe(deviceId);

    // Read back as any client of Alice's would, with its own transport.
    const http = sessionHttp(server, first.session);
    const query = await http.request({
      method: "POST",
      path: "/_matrix/client/v3/keys/query",
      body: { device_keys: { [alice.userId]: [] } },
      schema: keysQueryResponse,
    });
    expect(query.device_keys[alice.userId]?.[deviceId]).toMatchObject({
      dehydrated: true,
      device_id: deviceId,
    });
    const devices = await http.request({
      method: "GET",
      path: "/_matrix/client/v3/devices",
      schema: devicesResponse,
    });
    expect(devices.devices.map((d) => d.device_id)).toContain(deviceId);
    expect(await first.client.dehydration.status()).toEqual({
      device: { status: "valid", deviceId },
      rotation: { running: false, record: { deviceId, sinceMs: expect.any(Number), uploadedHere: true } },
    });
  });

  it("lets a new login holding only the recovery key restore the keys and rehydrate the device", async () => {
    const alice = await t.aliceWithDevice();
    const second = await t.login(alice.userId);
    const restored = await second.client.crossSigning.restoreFromRecoveryKey(alice.recoveryKey);
    expect(restored.status).toEqual({ hasMaster: true, hasSelfSigning: true, hasUserSigning: true });
    expect(await cachedKey(second.client)).toBeUndefined();

    const drained = await second.client.dehydration.drain({ secretStorageKey: restored.secretStorageKey });
    expect(drained).toMatchObject({ outcome: "completed", deviceId: alice.deviceId });
    // It opened the device with the key Alice's first device made, read from secret storage.
    expect(await cachedKey(second.client)).toBe(await cachedKey(alice.first.client));
    const pages = payloadsOf(second.seen, "dehydration.drain.page").length;
    expect(second.seen.map((e) => e.name)).toEqual([
      "dehydration.keyCached",
      "dehydration.drain.found",
      "dehydration.drain.rehydrated",
      ...Array<string>(pages).fill("dehydration.drain.page"),
      "dehydration.drain.completed",
    ]);
    expect(second.seen.slice(0, 3)).toEqual([
      { name: "dehydration.keyCached", payload: { source: "secret-storage" } },
      { name: "dehydration.drain.found", payload: { deviceId: alice.deviceId, resumeFrom: undefined } },
      { name: "dehydration.drain.rehydrated", payload: { deviceId: alice.deviceId } },
    ]);
  });

  it("makes a new login without the recovery key refuse the device and upload nothing", async () => {
    const alice = await t.aliceWithDevice();
    // It cannot trust the identity that signed the device: no private keys, not verified.
    const stranger = await t.login(alice.userId);
    server.homeserver.control.clearRequestLog();
    // Our own doing, not the server's: the message says to restore cross-signing first.
    const refused = await t.leaks.rejection(stranger.client.dehydration.drain());
    expect(refused).toMatchObject({
      name: "DrainError",
      code: "cross_signing_not_restored",
      details: { deviceId: alice.deviceId },
      cause: {
        name: "DehydrationError",
        code: "cross_signing_not_restored",
        details: { deviceId: alice.deviceId, reasons: ["own_identity_not_trusted"] },
      },
    });
    expect((refused as Error).message).toMatch(/restore cross-signing/i);
    expect((refused as Error).message).not.toMatch(/injecting/);
    expect(payloadsOf(stranger.seen, "dehydration.validationFailed")).toEqual([
      { deviceId: alice.deviceId, reasons: ["own_identity_not_trusted"] },
    ]);
    // Not even a forced replacement uploads: this login holds no self-signing key.
    expect(await t.leaks.rejection(stranger.client.dehydration.replaceNow({ force: true }))).toMatchObject({
      code: "missing_self_signing_key",
    });
    expect(
      server.homeserver.control
        .requestLog()
        .some((e) => e.method !== "GET" && e.path === DEHYDRATED_DEVICE_PATH),
    ).toBe(false);
    expect(await serverDeviceId(stranger.client)).toBe(alice.deviceId);
  });

  itInThread("opens the device through the manager (clientInternals)")(
    "imports a room key that was sent to the device while Alice was away, from one page of its events",
    async () => {
      const alice = await t.aliceWithDevice();
      const second = await t.restoredLogin(alice);
      const bob = `bob-of-${alice.userId.slice(1).split(":")[0]}`;
      const messages = await bobSharesRoomKeys(server, alice.userId, 1, bob, t.leaks);
      const [message] = messages;

      // One page, fetched the way this profile serves it (the full drain has its own tests).
      const path = dehydratedDeviceEventsPath(alice.deviceId);
      const http = sessionHttp(server, second.session);
      const page = server.homeserver.profile.dehydratedEventsPost
        ? await http.request({ method: "POST", path, body: {}, schema: eventsPage })
        : await http.request({ method: "GET", path, schema: eventsPage });
      expect(page.events.length).toBeGreaterThan(0);

      // The opened device itself, without the drain engine around it: only the manager hands it out.
      const rehydrated = (await clientInternals(inThreadClient(second.client)).manager.rehydrate({
        secretStorageKey: second.key,
      }))!;
      expect(rehydrated.deviceId).toBe(alice.deviceId);
      const keys = await rehydrated.receiveEvents(page.events);
      rehydrated.free();
      expect(keys).toContainEqual(
        expect.objectContaining({ roomId: message!.roomId, senderKey: message!.senderKey }),
      );
      expect(await decryptable(second.client, messages)).toBe(1);
    },
  );

  describe("a hostile server's injected device", () => {
    /** A dehydrated device body for `userId` made under another identity (not on the server). */
    async function foreignBody(userId: string): Promise<PutDehydratedDeviceBody> {
      const other = await OlmMachine.initialize(new UserId(userId), new DeviceId("ATTACKER"));
      (await other.bootstrapCrossSigning(true)).free();
      const body = await buildDehydratedDeviceUpload(other, new Uint8Array(32).fill(1), "Dehydrated device");
      other.close();
      return body;
    }

    function inject(
      userId: string,
      body: Pick<PutDehydratedDeviceBody, "device_id" | "device_data" | "device_keys"> &
        Partial<PutDehydratedDeviceBody>,
    ) {
      server.homeserver.control.injectDehydratedDevice(userId, {
        deviceId: body.device_id,
        deviceData: body.device_data,
        deviceKeys: body.device_keys,
        ...(body.one_time_keys ? { oneTimeKeys: body.one_time_keys } : {}),
        ...(body.fallback_keys ? { fallbackKeys: body.fallback_keys } : {}),
      });
    }

    /** Alice's restored login drains: the device is refused, reported, and left on the server. */
    async function expectRefusedAndKept(
      alice: Alice,
      second: Login & { key: SecretStorageKey },
      deviceId: string,
      reasons: DehydratedDeviceRejection[],
    ) {
      second.seen.length = 0;
      const refusal = await t.leaks.rejection(
        second.client.dehydration.drain({ secretStorageKey: second.key }),
      );
      const injecting = expect.stringMatching(/may be injecting a device/);
      expect(refusal).toMatchObject({
        name: "DrainError",
        code: "device_rejected",
        message: injecting,
        details: { deviceId },
        cause: {
          name: "DehydrationError",
          code: "device_rejected",
          message: injecting,
          details: { deviceId, reasons },
        },
      });
      expect(second.seen).toEqual([
        { name: "dehydration.validationFailed", payload: { deviceId, reasons } },
        // The event carries the refusal as plain data (`ErrorInfo`), the rejection the error itself.
        { name: "dehydration.drain.error", payload: { deviceId, error: toErrorInfo(refusal) } },
      ]);
      // Nothing deleted: the server still has the device, in its state and over HTTP.
      expect(server.homeserver.control.dehydratedDevice(alice.userId)?.deviceId).toBe(deviceId);
      expect(await serverDeviceId(second.client)).toBe(deviceId);
      expect(server.homeserver.control.requestLog().some((e) => e.method === "DELETE")).toBe(false);
    }

    it("that is unsigned is refused and left on the server", async () => {
      const alice = await t.aliceWithDevice();
      const second = await t.restoredLogin(alice);
      const body = await foreignBody(alice.userId);
      const own = `ed25519:${body.device_id}`;
      body.device_keys.signatures = {
        [alice.userId]: { [own]: body.device_keys.signatures[alice.userId]![own]! },
      };
      server.homeserver.control.clearRequestLog();
      inject(alice.userId, body);
      await expectRefusedAndKept(alice, second, body.device_id, ["not_cross_signed_by_owner"]);
    });

    it("that is signed by another identity is refused and left on the server", async () => {
      const alice = await t.aliceWithDevice();
      const second = await t.restoredLogin(alice);
      const body = await foreignBody(alice.userId);
      server.homeserver.control.clearRequestLog();
      inject(alice.userId, body);
      await expectRefusedAndKept(alice, second, body.device_id, ["not_cross_signed_by_owner"]);
    });

    itInThread("signs a forged device with the first device's machine (olmMachine, wasm objects)")(
      "whose id is not its Curve25519 key is refused and left on the server, though cross-signed and openable",
      async () => {
        const alice = await t.aliceWithDevice();
        const second = await t.restoredLogin(alice);
        // A device named NOTITSKEY with valid self-signed keys flagged dehydrated, paired with the
        // genuine device_data (which Alice's key opens: crypto-wasm does not notice the wrong id).
        const impostor = await OlmMachine.initialize(new UserId(alice.userId), new DeviceId("NOTITSKEY"));
        const ids = impostor.identityKeys;
        const unsigned = {
          algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
          device_id: "NOTITSKEY",
          user_id: alice.userId,
          keys: {
            "curve25519:NOTITSKEY": ids.curve25519.toBase64(),
            "ed25519:NOTITSKEY": ids.ed25519.toBase64(),
          },
          dehydrated: true,
        };
        const signatures = JSON.parse((await impostor.sign(canonicalJson(unsigned))).asJSON());
        impostor.close();
        server.homeserver.control.clearRequestLog();
        inject(alice.userId, {
          device_id: "NOTITSKEY",
          device_data: alice.deviceData as PutDehydratedDeviceBody["device_data"],
          device_keys: { ...unsigned, signatures } as PutDehydratedDeviceBody["device_keys"],
        });
        // Alice's first device signs it with her real self-signing key, as it would any own device
        // (through the machine, sending what it hands back over a transport of its own).
        const machine = inThreadClient(alice.first.client).olmMachine;
        const http = sessionHttp(server, alice.first.session);
        await sendOutgoingRequest(machine, http, machine.queryKeysForUsers([new UserId(alice.userId)]));
        const device = (await machine.getDevice(new UserId(alice.userId), new DeviceId("NOTITSKEY")))!;
        const signature = await device.verify();
        await http.request({
          method: "POST",
          path: "/_matrix/client/v3/keys/signatures/upload",
          body: JSON.parse(signature.body),
          schema: z.looseObject({}),
        });
        await expectRefusedAndKept(alice, second, "NOTITSKEY", ["id_not_curve25519_key"]);
      },
    );
  });

  describe("interop with matrix-js-sdk's secret storage over the same account data", () => {
    /** matrix-js-sdk's secret storage over `session`'s own transport, unlocked with `key`. */
    function elementSecretStorage(session: Session, key: SecretStorageKey) {
      const accountData = createHttpAccountData(sessionHttp(server, session), session.userId);
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

    /** The stable name, which matrix-js-sdk's types do not list (Element reads only the unstable one). */
    const stableName = STABLE as typeof UNSTABLE;

    it("reads a key that matrix-js-sdk stored under the unstable name only, as Element does", async () => {
      const alice = await t.aliceWithDevice();
      const second = await t.restoredLogin(alice);
      // This login holds Alice's key already, as one that drained her device does.
      await second.client.dehydration.drain({ secretStorageKey: second.key });
      const element = elementSecretStorage(alice.first.session, alice.ssKey);
      const theirKey = globalThis.crypto.getRandomValues(new Uint8Array(32));
      t.leaks.secretBytes(theirKey);
      await element.store(UNSTABLE, Buffer.from(theirKey).toString("base64").replace(/=+$/, ""));
      // With no device on the server to decide between the two names, the reader takes the
      // unstable name's key (Element's).
      await alice.first.client.dehydration.delete();
      second.seen.length = 0;

      // Our next upload reads Element's key, uses it, and writes it under the stable name too.
      const { deviceId } = await second.client.dehydration.replaceNow({ secretStorageKey: alice.ssKey });
      expect(decodeBase64((await cachedKey(second.client))!)).toEqual(theirKey);
      expect(second.seen).toEqual([
        { name: "dehydration.keyChanged", payload: { source: "secret-storage" } },
        { name: "dehydration.keyCached", payload: { source: "secret-storage" } },
        { name: "dehydration.uploaded", payload: { deviceId } },
        {
          name: "dehydration.rotation.replaced",
          payload: { previousDeviceId: undefined, deviceId, reason: "no_device" },
        },
      ]);
      expect(await element.get(stableName)).toBe(await element.get(UNSTABLE));
      expect(await serverDeviceId(second.client)).toBe(deviceId);
      // And Element's key, the one cached here, opens the new device.
      expect(await second.client.dehydration.drain()).toMatchObject({ outcome: "completed", deviceId });
    });

    itInThread("opens the device with the machine's own rehydrate (olmMachine)")(
      "lets matrix-js-sdk read the key we stored, and that key opens our device",
      async () => {
        const alice = await t.aliceWithDevice();
        const second = await t.restoredLogin(alice);
        const element = elementSecretStorage(second.session, alice.ssKey);
        const text = await element.get(UNSTABLE);
        // What we stored under both names is the key Alice's first device made its device with.
        expect(text).toBe(await cachedKey(alice.first.client));
        expect(await element.get(stableName)).toBe(text);
        const bytes = decodeBase64(text!)!;
        expect(bytes).toHaveLength(32);
        // What Element does with it: crypto-wasm rehydrates the server's device with those bytes.
        const device = await sessionHttp(server, second.session).request({
          method: "GET",
          path: DEHYDRATED_DEVICE_PATH,
          schema: dehydratedDeviceResponse,
        });
        expect(device.device_id).toBe(alice.deviceId);
        const opened = await inThreadClient(second.client)
          .olmMachine.dehydratedDevices()
          .rehydrate(
            DehydratedDeviceKey.createKeyFromArray(bytes),
            new DeviceId(device.device_id),
            JSON.stringify(device.device_data),
          );
        opened.free();
      },
    );
  });

  itInThread("builds a second DehydrationManager over the client's machine and transport (clientInternals)")(
    "drains the device, then replaces it, when Alice resets her cross-signing identity",
    async () => {
      const alice = await t.aliceWithDevice();
      const { first } = alice;
      const before = alice.deviceId;
      const parts = clientInternals(inThreadClient(first.client));
      // A second manager over the same machine that saw the old device valid and not what followed —
      // as another part of the app would have: does it notice the identity change on its own?
      const witness = new DehydrationManager({
        machine: inThreadClient(first.client).olmMachine,
        http: parts.http,
        outgoingRequests: parts.outgoingRequests,
        secretStorage: parts.secretStorage,
        logger: t.leaks.logger,
      });
      expect(await witness.checkDevice()).toEqual({ status: "valid", deviceId: before });
      server.homeserver.control.clearRequestLog();
      const reset = await first.client.crossSigning.bootstrap({ reset: true, secretStorageKey: alice.ssKey });
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
      const names = first.seen.map((e) => e.name);
      expect(names.indexOf("dehydration.drain.completed")).toBeGreaterThanOrEqual(0);
      expect(names.indexOf("dehydration.drain.completed")).toBeLessThan(
        names.indexOf("dehydration.uploaded"),
      );

      // A manager that saw only the old device sees the identity change; the client's own uploaded
      // the replacement under the new one, which validates.
      expect(await witness.identityChangedSinceUpload()).toBe(true);
      expect(await parts.manager.identityChangedSinceUpload()).toBe(false);
      expect((await first.client.dehydration.status()).device).toEqual({ status: "valid", deviceId: after });
      // The manager's own clean-up after a reset (not on the face) keeps what the new identity signed.
      expect(await parts.manager.afterIdentityReset({ secretStorageKey: alice.ssKey })).toBe("kept");
    },
  );

  itInThread("asks the client's manager directly (clientInternals)")(
    "deletes the device, and a second delete finds none",
    async () => {
      const alice = await t.aliceWithDevice();
      const { first } = alice;
      expect(await first.client.dehydration.delete()).toBe(alice.deviceId);
      expect(first.seen).toEqual([
        { name: "dehydration.deleted", payload: { deviceId: alice.deviceId, reason: "requested" } },
      ]);
      expect(server.homeserver.control.dehydratedDevice(alice.userId)).toBeUndefined();
      expect(await first.client.dehydration.delete()).toBeUndefined();
      expect((await first.client.dehydration.status()).device).toEqual({ status: "none" });
      // The manager's own clean-up after a reset (not on the face) finds nothing to do.
      expect(await clientInternals(inThreadClient(first.client)).manager.afterIdentityReset()).toBe("none");
    },
  );

  it("leaks no key, recovery key or access token into logs, errors or events", async () => {
    // A run with something in every channel: a restore and a drain, and a refusal (an error and a
    // `validationFailed` event). Every other test is checked the same way once it ends.
    const alice = await t.aliceWithDevice();
    const second = await t.restoredLogin(alice);
    await second.client.dehydration.drain({ secretStorageKey: second.key });
    const stranger = await t.login(alice.userId);
    await t.leaks.rejection(stranger.client.dehydration.drain());
    for (const client of t.clients) await watchDehydrationKey(t.leaks, client);
    expect(t.leaks.errors.length).toBeGreaterThan(0);
    expect(t.leaks.events.some((e) => e.name === "dehydration.validationFailed")).toBe(true);
    expect(t.leaks.events.some((e) => e.name === "dehydration.drain.completed")).toBe(true);
    t.leaks.expectNoLeaks();
  });
});

describe("a server with dehydrated devices switched off", () => {
  let server: RunningMockServer;
  const t = usePerTestClients(() => server);

  beforeAll(async () => {
    server = await startMockServer({ profile: "synapse-1.157", overrides: { dehydratedDevices: false } });
  });

  afterAll(async () => {
    await server?.close();
  });

  it("is reported unsupported, and every call says so without side effects", async () => {
    const { client } = await t.open(t.createUser("carol"));
    const { dehydration } = client;
    expect(await dehydration.isSupported()).toBe(false);
    expect((await dehydration.status()).device).toEqual({ status: "none" });
    expect(await dehydration.drain()).toEqual({ outcome: "no_device" });
    expect(await dehydration.delete()).toBeUndefined();
    const boot = await client.crossSigning.bootstrap({ createSecretStorageKey: true });
    t.leaks.secret(boot.recoveryKey);
    t.leaks.secretBytes(boot.secretStorageKey!.key);
    const secretStorageKey = boot.secretStorageKey!;
    expect(await t.leaks.rejection(dehydration.replaceNow({ secretStorageKey }))).toMatchObject({
      name: "DehydrationError",
      code: "unsupported",
    });
    // The rotation gives up at once: a server without MSC3814 will not grow it by waiting.
    expect(await dehydration.start({ secretStorageKey })).toEqual({ action: "failed", retryAtMs: undefined });
    await dehydration.stop();
    // No key was made for a device that cannot exist.
    expect(await client.secretStorage.isStored(UNSTABLE)).toBe(false);
    expect(await client.secretStorage.isStored(STABLE)).toBe(false);
  });
});
