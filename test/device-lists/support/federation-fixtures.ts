import { afterEach, beforeAll, expect } from "vitest";
import type { CreateE2eeClientOptions, E2eeClientEvents } from "../../../src/client-options.js";
import { loadCryptoWasm } from "../../../src/crypto/load-wasm.js";
import type { DeviceListTrust } from "../../../src/device-lists/trust.js";
import {
  type FederationOptions,
  type ProfileName,
  type ProfileOverrides,
  type RunningMockServer,
  startMockServer,
} from "../../../src/testing/index.js";
import { inClient, type TestClient } from "../../integration/support/client-mode.js";
import {
  type Account,
  createAccount,
  endTest,
  LeakWatch,
  loginNewDevice,
  openTestClient,
} from "../../integration/support/foundation-fixtures.js";
import { encryptedRoom } from "../../integration/support/room-fixtures.js";
import { knownDevices, waitUntil } from "../../integration/support/sync-fixtures.js";

/**
 * Device-list tests over a real socket with simulated federation: Alice on the mock's own server
 * (`localhost`), Dave on `remote.example` hosted by the same process. Alice's server keeps a copy
 * of Dave's list, and the tests make it (or Alice's client's copy) stale the ways PROTOCOL.md
 * "MSC2638" lists, then watch the SDK repair it.
 */

export const REMOTE = "remote.example";
export const REFRESH_PATH = /\/user\/[^/]+\/devices\/refresh$/;
export const KEYS_QUERY = "/_matrix/client/v3/keys/query";

export interface FederatedSetup {
  readonly server: RunningMockServer;
  readonly watch: LeakWatch;
  /** The client in the test's thread, or in a worker in the `worker` project (client-mode.ts). */
  open(account: Account, options?: Partial<CreateE2eeClientOptions>): Promise<TestClient>;
}

/**
 * A fresh server per test, started by the test itself with its profile (`start`), every client
 * closed and the leak watch checked afterwards — `useFoundationSetup` with federation.
 */
export function useFederatedSetup(): {
  start(
    profile: ProfileName,
    federation?: FederationOptions,
    overrides?: ProfileOverrides,
  ): Promise<FederatedSetup>;
} {
  let current: { server: RunningMockServer; watch: LeakWatch; clients: TestClient[] } | undefined;
  beforeAll(() => loadCryptoWasm());
  afterEach(async () => {
    const ended = current;
    current = undefined;
    if (ended !== undefined) await endTest(ended);
  });
  return {
    async start(profile, federation = {}, overrides = {}) {
      const server = await startMockServer({
        profile,
        overrides,
        federation: { remoteServers: [REMOTE], ...federation },
      });
      const state = { server, watch: new LeakWatch(), clients: [] as TestClient[] };
      current = state;
      return {
        server,
        watch: state.watch,
        async open(account, options = {}) {
          const client = await openTestClient(server, account, state.watch, options);
          state.clients.push(client);
          return client;
        },
      };
    },
  };
}

/** A user of the hosted remote server, with one logged-in device. */
export function createRemoteAccount(server: RunningMockServer, localpart: string): Account {
  const password = `${localpart}-correct-horse`;
  const created = server.homeserver.control.createUser(localpart, { password, server: REMOTE });
  if (!created) throw new Error(`user ${localpart} exists`);
  return { ...created, password };
}

/** The `deviceLists.*` events a client emitted, in order. */
export class TrustRecorder {
  readonly changes: { userId: string; trust: DeviceListTrust }[] = [];

  constructor(client: TestClient) {
    client.events.on("deviceLists.trustChanged", (p: E2eeClientEvents["deviceLists.trustChanged"]) =>
      this.changes.push(p),
    );
  }

  of(userId: string): DeviceListTrust[] {
    return this.changes.filter((c) => c.userId === userId).map((c) => c.trust);
  }
}

/**
 * Alice and Dave (remote) share an encrypted room; Alice's loop runs and her first message reached
 * Dave's first device. Then Dave logs in on a second device, which publishes its keys, while
 * updates of his list are lost: Alice's server's copy, and so Alice's client, never hear of it.
 */
export async function staleRemoteDevice(
  s: FederatedSetup,
  options: {
    alice?: Partial<CreateE2eeClientOptions>;
    daveCrossSigned?: boolean;
    loseUpdates?: boolean;
  } = {},
) {
  const control = s.server.homeserver.control;
  const alice = createAccount(s.server, "alice");
  const dave = createRemoteAccount(s.server, "dave");
  const daveFirst = await s.open(dave);
  await daveFirst.processOutgoingRequests();
  const daveBoot = options.daveCrossSigned
    ? await daveFirst.crossSigning.bootstrap({ createSecretStorageKey: true })
    : undefined;
  if (daveBoot?.recoveryKey !== undefined) s.watch.secret(daveBoot.recoveryKey);
  const aliceClient = await s.open(alice, options.alice);
  await aliceClient.processOutgoingRequests();
  const trust = new TrustRecorder(aliceClient);
  const roomId = await encryptedRoom(s.server, alice, [dave]);
  await aliceClient.sync.start({ pollTimeoutMs: 200 });
  await aliceClient.rooms.send(roomId, "m.room.message", { msgtype: "m.text", body: "hi Dave" });
  expect(await knownDevices(aliceClient, dave.userId)).toEqual([dave.deviceId]);

  if (options.loseUpdates !== false) control.loseDeviceListUpdates(dave.userId, true);
  const second = await loginNewDevice(s.server, dave);
  const daveSecond = await s.open(second);
  await daveSecond.processOutgoingRequests();
  return { control, alice, dave, second, aliceClient, daveFirst, daveSecond, daveBoot, roomId, trust };
}

/** Whether `recipient`'s device holds an `m.room.encrypted` to-device message from `senderUserId`. */
export function roomKeyReached(server: RunningMockServer, senderUserId: string, recipient: Account): boolean {
  return server.homeserver.control
    .toDeviceInbox(recipient.userId, recipient.deviceId)
    .events.some((e) => e.type === "m.room.encrypted" && e.sender === senderUserId);
}

/** The MSC2638 refresh requests `userId`'s client sent. */
export function refreshRequests(server: RunningMockServer, userId: string) {
  return server.homeserver.control
    .requestLog()
    .filter((e) => e.method === "POST" && REFRESH_PATH.test(e.path) && e.userId === userId);
}

/** The `keys/query` requests `userId`'s client sent. */
export function keyQueries(server: RunningMockServer, userId: string) {
  return server.homeserver.control
    .requestLog()
    .filter((e) => e.method === "POST" && e.path === KEYS_QUERY && e.userId === userId);
}

/**
 * `sender` shares a room key for `roomId` with `users` and sends only those to-device messages —
 * no room event, so no server resyncs on a room `m.room.encrypted` naming the device.
 */
export async function shareRoomKeyOnly(sender: TestClient, roomId: string, users: readonly string[]) {
  await inClient(sender, "shareRoomKeyOnly", roomId, [...users]);
}

/** Waits until `client` holds `deviceId` among `userId`'s devices. */
export async function untilKnown(client: TestClient, userId: string, deviceId: string): Promise<void> {
  await waitUntil(`the client knows ${deviceId}`, async () =>
    (await knownDevices(client, userId)).includes(deviceId),
  );
}

export { knownDevices, waitUntil };
