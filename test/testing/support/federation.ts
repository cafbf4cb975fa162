import { afterEach, expect } from "vitest";
import {
  type FederationOptions,
  ManualClock,
  type MockHomeserver,
  type ProfileName,
  type ProfileOverrides,
  type RunningMockServer,
  startMockServer,
} from "../../../src/testing/index.js";
import { deviceKeysFor, send, type TestDevice } from "../routes/e2ee-test-users.js";
import { sharedRoom, since, sync } from "../routes/room-support.js";
import type { FetchTarget } from "./transports.js";

/**
 * Shared set-up of the simulated-federation tests: a mock on a real socket with a `ManualClock`,
 * a local user (`alice`) and a user of the hosted remote server `remote.example` (`dave`), each a
 * logged-in device that talks HTTP to the same base URL.
 */

export const REMOTE = "remote.example";
export const PASSWORD = "federation-password";

export interface FederationWorld {
  running: RunningMockServer;
  hs: MockHomeserver;
  clock: ManualClock;
  server: FetchTarget;
  /** A local user's device. */
  alice: TestDevice;
  /** A device of `@dave:remote.example`, with device keys uploaded. */
  dave: TestDevice;
  /** Logs in another device of `@dave:remote.example` (over HTTP, with his full user id) and uploads its keys. */
  newDaveDevice(deviceId: string): Promise<TestDevice>;
  /** `alice`'s `keys/query` of dave: his device ids (`null` when left out) and the failed servers. */
  aliceQueriesDave(): Promise<{ devices: string[] | null; failures: Record<string, unknown> }>;
}

export function asDevice(
  server: FetchTarget,
  userId: string,
  deviceId: string,
  accessToken: string,
): TestDevice {
  return {
    userId,
    deviceId,
    accessToken,
    call: (method, path, body) => send(server, method, path, { body, accessToken }),
  };
}

/** For a `describe` body: `start()` opens a world (closed after the test). */
export function federationWorlds() {
  const open: RunningMockServer[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((r) => r.close()));
  });
  return async (
    options: {
      profile?: ProfileName;
      overrides?: ProfileOverrides;
      federation?: FederationOptions;
      /** Put alice and dave in a room (default true): the local server keeps copies only then. */
      shareRoom?: boolean;
    } = {},
  ): Promise<FederationWorld> => {
    const clock = new ManualClock();
    const running = await startMockServer({
      clock,
      ...(options.profile ? { profile: options.profile } : {}),
      ...(options.overrides ? { overrides: options.overrides } : {}),
      federation: { remoteServers: [REMOTE], ...options.federation },
    });
    open.push(running);
    const hs = running.homeserver;
    const server: FetchTarget = { fetch: (input, init) => fetch(new URL(input, running.url), init) };
    const created = (localpart: string, extra: { server?: string; deviceId: string }) => {
      const user = hs.control.createUser(localpart, { password: PASSWORD, ...extra });
      if (!user) throw new Error(`${localpart} exists`);
      return asDevice(server, user.userId, user.deviceId, user.accessToken);
    };
    const alice = created("alice", { deviceId: "ALICE1" });
    const dave = created("dave", { server: REMOTE, deviceId: "D1" });
    expect((await dave.call("POST", "keys/upload", { device_keys: deviceKeysFor(dave, "D1") })).status).toBe(
      200,
    );
    if (options.shareRoom ?? true) await sharedRoom(alice, dave);

    const newDaveDevice = async (deviceId: string) => {
      const res = await send(server, "POST", "login", {
        body: {
          type: "m.login.password",
          identifier: { type: "m.id.user", user: dave.userId },
          password: PASSWORD,
          device_id: deviceId,
        },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const device = asDevice(server, dave.userId, deviceId, res.body.access_token as string);
      const upload = await device.call("POST", "keys/upload", {
        device_keys: deviceKeysFor(device, deviceId),
      });
      expect(upload.status).toBe(200);
      return device;
    };
    const aliceQueriesDave = async () => {
      const res = await alice.call("POST", "keys/query", { device_keys: { [dave.userId]: [] } });
      expect(res.status).toBe(200);
      const byUser = res.body.device_keys as Record<string, Record<string, unknown>>;
      const devices = byUser[dave.userId];
      return {
        devices: devices ? Object.keys(devices).sort() : null,
        failures: res.body.failures as Record<string, unknown>,
      };
    };
    return { running, hs, clock, server, alice, dave, newDaveDevice, aliceQueriesDave };
  };
}

/** A `/sync` position of `user` now, to read later changes from. */
export async function syncToken(user: TestDevice): Promise<string> {
  return (await sync(user, "timeout=0")).next_batch;
}

/** Who `user`'s incremental `/sync` from `token` lists in `device_lists.changed`. */
export async function changedSince(user: TestDevice, token: string): Promise<string[]> {
  return (await sync(user, since(token, "timeout=0"))).device_lists?.changed ?? [];
}

/** The curve25519 key `deviceKeysFor(device, seed)` gives. */
export function curveKeyOf(keys: ReturnType<typeof deviceKeysFor>, deviceId: string): string {
  return keys.keys[`curve25519:${deviceId}`]!;
}
