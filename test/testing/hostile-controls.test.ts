import { describe, expect, it } from "vitest";
import type {
  InjectDeviceKeysOptions,
  InjectedDevice,
  MockHomeserver,
  ToDeviceMessages,
  ToDeviceSender,
} from "../../src/testing/index.js";
import { dehydrated, dehydratedDeviceId, putBody } from "./routes/dehydrated-device-helpers.js";
import { fakePublicKey, registerUser, type TestDevice } from "./routes/e2ee-test-users.js";
import { sharedRoom, since, sync } from "./routes/room-support.js";
import { call, type Harness, harnessesOn, transports } from "./support/transports.js";

/**
 * The hostile-server controls: `injectDeviceKeys` (an extra device the user never created) and
 * `sendToDeviceAs` (to-device messages the server makes up). Every behaviour runs through both
 * ways in — `hs.control` in-process, and `/_mock/…` on a real socket with a control token — so the
 * two cannot drift, down to what they refuse.
 */

const CONTROL_TOKEN = "hostile-control-token";

interface Controls {
  inject(userId: string, options: InjectDeviceKeysOptions): Promise<InjectedDevice>;
  sendAs(sender: ToDeviceSender, eventType: string, messages: unknown): Promise<number>;
}

/** A 400 `M_INVALID_PARAM` is the HTTP form of the call's `RangeError` (control-wire.ts). */
async function controlCall(h: Harness, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await call(h, "POST", path, { token: CONTROL_TOKEN, body });
  if (res.status === 400 && res.body.errcode === "M_INVALID_PARAM")
    throw new RangeError(String(res.body.error));
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

const ways = {
  "in-process control": (h: Harness): Controls => ({
    inject: async (userId, options) => h.homeserver.control.injectDeviceKeys(userId, options),
    sendAs: async (sender, eventType, messages) =>
      h.homeserver.control.sendToDeviceAs(sender, eventType, messages as ToDeviceMessages),
  }),
  "HTTP control API": (h: Harness): Controls => ({
    inject: async (userId, options) => {
      const body = await controlCall(h, "/_mock/device_keys", {
        user_id: userId,
        device_id: options.deviceId,
        device_keys: options.deviceKeys,
        ...(options.oneTimeKeys ? { one_time_keys: options.oneTimeKeys } : {}),
        ...(options.fallbackKeys ? { fallback_keys: options.fallbackKeys } : {}),
        ...(options.displayName !== undefined ? { display_name: options.displayName } : {}),
      });
      return {
        userId: body.user_id as string,
        deviceId: body.device_id as string,
        replaced: body.replaced as boolean,
      };
    },
    sendAs: async (sender, eventType, messages) => {
      const body = await controlCall(h, "/_mock/send_to_device_as", {
        user_id: sender.userId,
        device_id: sender.deviceId,
        event_type: eventType,
        messages,
      });
      return body.delivered as number;
    },
  }),
} as const;

function hostileKeys(userId: string, deviceId: string, extra: Record<string, unknown> = {}) {
  return {
    user_id: userId,
    device_id: deviceId,
    algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
    keys: {
      [`curve25519:${deviceId}`]: fakePublicKey(`${deviceId}-curve`),
      [`ed25519:${deviceId}`]: fakePublicKey(`${deviceId}-ed`),
    },
    dehydrated: true,
    signatures: { [userId]: { [`ed25519:${deviceId}`]: "not-checked-by-any-server" } },
    ...extra,
  };
}

const otk = (seed: string) => ({ key: fakePublicKey(seed), signatures: {} });

type Devices = { devices: { device_id: string; display_name: string | null }[] };
type Query = { device_keys: Record<string, Record<string, Record<string, unknown>>> };
type Claim = { one_time_keys: Record<string, Record<string, Record<string, unknown>>> };

async function deviceIds(user: TestDevice): Promise<string[]> {
  const res = await user.call("GET", "devices");
  return (res.body as unknown as Devices).devices.map((d) => d.device_id).sort();
}

async function claimOnce(claimer: TestDevice, userId: string, deviceId: string): Promise<string[]> {
  const res = await claimer.call("POST", "keys/claim", {
    one_time_keys: { [userId]: { [deviceId]: "signed_curve25519" } },
  });
  return Object.keys((res.body as unknown as Claim).one_time_keys[userId]?.[deviceId] ?? {});
}

function inboxOf(mock: MockHomeserver, userId: string, deviceId: string) {
  return mock.control.toDeviceInbox(userId, deviceId).events;
}

describe.each(transports)("over %s", (transport) => {
  const start = harnessesOn(transport);

  describe.each(Object.keys(ways) as (keyof typeof ways)[])("through the %s", (way) => {
    async function setup() {
      // `/_mock/` calls go through the harness's fetch: hs.fetch in-process, or the socket.
      const h = await start({ controlToken: CONTROL_TOKEN });
      const controls = ways[way](h);
      const alice = await registerUser(h, "alice");
      const bob = await registerUser(h, "bob");
      return { h, mock: h.homeserver, controls, alice, bob };
    }

    describe("injectDeviceKeys", () => {
      it("adds a device that keys/query serves as given and keys/claim, /devices and to-device reach", async () => {
        const { h, mock, controls, alice, bob } = await setup();
        const keys = hostileKeys(bob.userId, "EVIL1");

        const injected = await controls.inject(bob.userId, {
          deviceId: "EVIL1",
          deviceKeys: keys,
          oneTimeKeys: { "signed_curve25519:AAAAAQ": otk("one"), "signed_curve25519:AAAAAg": otk("two") },
          fallbackKeys: { "signed_curve25519:AAAAAw": { ...otk("fb"), fallback: true } },
          displayName: "Looks legit",
        });

        expect(injected).toEqual({ userId: bob.userId, deviceId: "EVIL1", replaced: false });
        const query = await alice.call("POST", "keys/query", { device_keys: { [bob.userId]: [] } });
        const shown = (query.body as unknown as Query).device_keys[bob.userId]!;
        // Bob's own device has uploaded no keys, so the injected device is all there is.
        expect(Object.keys(shown)).toEqual(["EVIL1"]);
        // As given — `dehydrated` and the unchecked signature included — with `unsigned` rebuilt.
        expect(shown.EVIL1).toEqual({ ...keys, unsigned: { device_display_name: "Looks legit" } });
        expect(await claimOnce(alice, bob.userId, "EVIL1")).toEqual(["signed_curve25519:AAAAAQ"]);
        expect(await claimOnce(alice, bob.userId, "EVIL1")).toEqual(["signed_curve25519:AAAAAg"]);
        expect(await claimOnce(alice, bob.userId, "EVIL1")).toEqual(["signed_curve25519:AAAAAw"]);
        expect(await deviceIds(bob)).toEqual([bob.deviceId, "EVIL1"].sort());
        // Directly addressed and "*" sends both reach it, as they reach any device.
        for (const [txn, target] of [
          ["t1", "EVIL1"],
          ["t2", "*"],
        ] as const) {
          const sent = await alice.call("PUT", `sendToDevice/m.test/${txn}`, {
            messages: { [bob.userId]: { [target]: { txn } } },
          });
          expect(sent.status).toBe(200);
        }
        expect(inboxOf(mock, bob.userId, "EVIL1")).toEqual([
          { type: "m.test", sender: alice.userId, content: { txn: "t1" } },
          { type: "m.test", sender: alice.userId, content: { txn: "t2" } },
        ]);
        const overHttp = await call(h, "GET", `/_mock/to_device/${encodeURIComponent(bob.userId)}/EVIL1`, {
          token: CONTROL_TOKEN,
        });
        expect(overHttp.body.events).toHaveLength(2);
      });

      it("gives one user several injected devices and leaves the dehydrated device alone", async () => {
        const { mock, controls, alice, bob } = await setup();
        const dehydratedId = dehydratedDeviceId("real");
        expect((await dehydrated(mock, bob, "PUT", "", putBody(bob, dehydratedId))).status).toBe(200);

        await controls.inject(bob.userId, {
          deviceId: "EVIL1",
          deviceKeys: hostileKeys(bob.userId, "EVIL1"),
        });
        await controls.inject(bob.userId, {
          deviceId: "EVIL2",
          deviceKeys: hostileKeys(bob.userId, "EVIL2"),
        });

        expect(await deviceIds(bob)).toEqual([bob.deviceId, dehydratedId, "EVIL1", "EVIL2"].sort());
        expect(mock.control.dehydratedDevice(bob.userId)?.deviceId).toBe(dehydratedId);
        expect((await dehydrated(mock, bob, "GET")).body.device_id).toBe(dehydratedId);
        const query = await alice.call("POST", "keys/query", { device_keys: { [bob.userId]: [] } });
        expect(Object.keys((query.body as unknown as Query).device_keys[bob.userId]!).sort()).toEqual(
          [dehydratedId, "EVIL1", "EVIL2"].sort(),
        );
        expect(mock.state.injectedDevices.deviceIds(bob.userId)).toEqual(["EVIL1", "EVIL2"]);
      });

      it("announces the device as a login does: users sharing a room see a device-list change", async () => {
        const { h, controls, alice, bob } = await setup();
        const stranger = await registerUser(h, "stranger");
        await sharedRoom(alice, bob);
        const aliceBefore = (await sync(alice, "timeout=0")).next_batch;
        const strangerBefore = (await sync(stranger, "timeout=0")).next_batch;

        await controls.inject(bob.userId, {
          deviceId: "EVIL1",
          deviceKeys: hostileKeys(bob.userId, "EVIL1"),
        });

        const aliceAfter = await sync(alice, since(aliceBefore, "timeout=0"));
        expect(aliceAfter.device_lists?.changed).toEqual([bob.userId]);
        const changes = await alice.call("GET", `keys/changes?from=${encodeURIComponent(aliceBefore)}`);
        expect(changes.body).toEqual({ changed: [bob.userId], left: [] });
        const strangerAfter = await sync(stranger, since(strangerBefore, "timeout=0"));
        expect(strangerAfter.device_lists?.changed ?? []).not.toContain(bob.userId);
      });

      it("wakes a waiting /sync of a user who shares a room", async () => {
        const { controls, alice, bob } = await setup();
        await sharedRoom(alice, bob);
        const before = (await sync(alice, "timeout=0")).next_batch;

        const waiting = sync(alice, since(before, "timeout=10000"));
        await new Promise((resolve) => setTimeout(resolve, 50));
        await controls.inject(bob.userId, {
          deviceId: "EVIL1",
          deviceKeys: hostileKeys(bob.userId, "EVIL1"),
        });

        expect((await waiting).device_lists?.changed).toEqual([bob.userId]);
      });

      it("replaces its own earlier injection afresh: new keys, old one-time keys and inbox gone", async () => {
        const { mock, controls, alice, bob } = await setup();
        await controls.inject(bob.userId, {
          deviceId: "EVIL1",
          deviceKeys: hostileKeys(bob.userId, "EVIL1"),
          oneTimeKeys: { "signed_curve25519:OLD": otk("old") },
        });
        mock.state.toDevice.enqueue(bob.userId, "EVIL1", {
          type: "m.test",
          sender: alice.userId,
          content: {},
        });

        const second = hostileKeys(bob.userId, "EVIL1", { keys: { "ed25519:EVIL1": fakePublicKey("new") } });
        const again = await controls.inject(bob.userId, {
          deviceId: "EVIL1",
          deviceKeys: second,
          oneTimeKeys: { "signed_curve25519:NEW": otk("new") },
        });

        expect(again.replaced).toBe(true);
        const query = await alice.call("POST", "keys/query", { device_keys: { [bob.userId]: ["EVIL1"] } });
        expect((query.body as unknown as Query).device_keys[bob.userId]!.EVIL1!.keys).toEqual(second.keys);
        expect(await claimOnce(alice, bob.userId, "EVIL1")).toEqual(["signed_curve25519:NEW"]);
        expect(await claimOnce(alice, bob.userId, "EVIL1")).toEqual([]);
        expect(inboxOf(mock, bob.userId, "EVIL1")).toEqual([]);
        expect(await deviceIds(bob)).toEqual([bob.deviceId, "EVIL1"].sort());
      });

      it("is gone, like any device, after the user logs out everywhere", async () => {
        const { mock, controls, bob } = await setup();
        await controls.inject(bob.userId, {
          deviceId: "EVIL1",
          deviceKeys: hostileKeys(bob.userId, "EVIL1"),
        });

        expect((await bob.call("POST", "logout/all", {})).status).toBe(200);

        expect(mock.state.accounts.deviceIds(bob.userId)).toEqual([]);
        expect(mock.state.injectedDevices.deviceIds(bob.userId)).toEqual([]);
        const again = await controls.inject(bob.userId, {
          deviceId: "EVIL1",
          deviceKeys: hostileKeys(bob.userId, "EVIL1"),
        });
        expect(again.replaced).toBe(false);
      });

      it("refuses an unknown user, an empty or taken id, keys naming another device, a bad key id", async () => {
        const { mock, controls, bob } = await setup();
        const dehydratedId = dehydratedDeviceId("real");
        await dehydrated(mock, bob, "PUT", "", putBody(bob, dehydratedId));
        const positionBefore = mock.state.keys.position;
        const refused: [string, InjectDeviceKeysOptions, string?][] = [
          ["@nobody:localhost", { deviceId: "D", deviceKeys: hostileKeys("@nobody:localhost", "D") }],
          [bob.userId, { deviceId: "", deviceKeys: hostileKeys(bob.userId, "") }],
          [bob.userId, { deviceId: bob.deviceId, deviceKeys: hostileKeys(bob.userId, bob.deviceId) }],
          [bob.userId, { deviceId: dehydratedId, deviceKeys: hostileKeys(bob.userId, dehydratedId) }],
          [bob.userId, { deviceId: "D", deviceKeys: hostileKeys("@alice:localhost", "D") }],
          [bob.userId, { deviceId: "D", deviceKeys: hostileKeys(bob.userId, "OTHER") }],
          [
            bob.userId,
            {
              deviceId: "D",
              deviceKeys: hostileKeys(bob.userId, "D"),
              oneTimeKeys: { "no-colon": otk("x") },
            },
          ],
          [
            bob.userId,
            { deviceId: "D", deviceKeys: hostileKeys(bob.userId, "D"), fallbackKeys: { "a:b:c": otk("x") } },
          ],
        ];

        for (const [userId, options] of refused) {
          await expect(controls.inject(userId, options), JSON.stringify(options.deviceId)).rejects.toThrow(
            RangeError,
          );
        }

        expect(mock.state.keys.position).toBe(positionBefore);
        expect(await deviceIds(bob)).toEqual([bob.deviceId, dehydratedId].sort());
        expect(mock.control.dehydratedDevice(bob.userId)?.deviceId).toBe(dehydratedId);
      });
    });

    describe("sendToDeviceAs", () => {
      it("delivers as an injected device, with the owner as sender, and counts the deliveries", async () => {
        const { mock, controls, alice, bob } = await setup();
        await controls.inject(bob.userId, {
          deviceId: "EVIL1",
          deviceKeys: hostileKeys(bob.userId, "EVIL1"),
        });
        const carol = await registerUser(mock, "carol");

        const delivered = await controls.sendAs(
          { userId: bob.userId, deviceId: "EVIL1" },
          "m.room.encrypted",
          {
            [alice.userId]: { [alice.deviceId]: { n: 1 }, NOSUCHDEVICE: { n: 2 } },
            [carol.userId]: { "*": { n: 3 } },
            "@someone:elsewhere.example": { X: { n: 4 } },
            "not a user id": { X: { n: 5 } },
          },
        );

        expect(delivered).toBe(2);
        expect(inboxOf(mock, alice.userId, alice.deviceId)).toEqual([
          { type: "m.room.encrypted", sender: bob.userId, content: { n: 1 } },
        ]);
        expect(inboxOf(mock, carol.userId, carol.deviceId)).toEqual([
          { type: "m.room.encrypted", sender: bob.userId, content: { n: 3 } },
        ]);
      });

      it("delivers as the dehydrated device, and to every device of a user for '*'", async () => {
        const { mock, controls, alice, bob } = await setup();
        const dehydratedId = dehydratedDeviceId("real");
        await dehydrated(mock, bob, "PUT", "", putBody(bob, dehydratedId));
        await controls.inject(alice.userId, {
          deviceId: "EVIL1",
          deviceKeys: hostileKeys(alice.userId, "EVIL1"),
        });

        const delivered = await controls.sendAs({ userId: bob.userId, deviceId: dehydratedId }, "m.test", {
          [alice.userId]: { "*": { from: "dehydrated" } },
        });

        expect(delivered).toBe(2);
        for (const deviceId of [alice.deviceId, "EVIL1"]) {
          expect(inboxOf(mock, alice.userId, deviceId)).toEqual([
            { type: "m.test", sender: bob.userId, content: { from: "dehydrated" } },
          ]);
        }
      });

      it("reaches the recipient's /sync like any message", async () => {
        const { controls, alice, bob } = await setup();
        const before = (await sync(alice, "timeout=0")).next_batch;

        await controls.sendAs(bob, "m.test", { [alice.userId]: { [alice.deviceId]: { hello: true } } });

        const after = await sync(alice, since(before, "timeout=0"));
        expect(after.to_device?.events).toEqual([
          { type: "m.test", sender: bob.userId, content: { hello: true } },
        ]);
      });

      it("refuses an unknown sender device, an empty event type and malformed messages, delivering nothing", async () => {
        const { mock, controls, alice, bob } = await setup();
        const to = { [alice.userId]: { [alice.deviceId]: { n: 1 } } };
        const refused: [ToDeviceSender, string, unknown][] = [
          [{ userId: bob.userId, deviceId: "NOSUCHDEVICE" }, "m.test", to],
          [{ userId: "@nobody:localhost", deviceId: "D" }, "m.test", to],
          [bob, "", to],
          [bob, "m.test", "not an object"],
          [bob, "m.test", [to]],
          [bob, "m.test", { [alice.userId]: "not an object" }],
          // One bad entry spoils the whole call, as a body that does not validate sends nothing.
          [bob, "m.test", { ...to, [bob.userId]: { [bob.deviceId]: "not an object" } }],
          [bob, "m.test", { [alice.userId]: { [alice.deviceId]: null } }],
        ];

        for (const [sender, eventType, messages] of refused) {
          await expect(controls.sendAs(sender, eventType, messages)).rejects.toThrow(RangeError);
        }

        expect(inboxOf(mock, alice.userId, alice.deviceId)).toEqual([]);
      });
    });
  });
});

describe("the hostile controls over HTTP", () => {
  const start = harnessesOn("socket");

  it("need the control token, and refuse unknown fields with 400 M_BAD_JSON", async () => {
    const h = await start({ controlToken: CONTROL_TOKEN });
    const bob = await registerUser(h, "bob");
    const inject = { user_id: bob.userId, device_id: "EVIL1", device_keys: hostileKeys(bob.userId, "EVIL1") };
    const sendAs = { user_id: bob.userId, device_id: bob.deviceId, event_type: "m.test", messages: {} };

    const noToken = await call(h, "POST", "/_mock/device_keys", { body: inject });
    const bobsToken = await call(h, "POST", "/_mock/send_to_device_as", {
      token: bob.accessToken,
      body: sendAs,
    });
    const unknownField = await call(h, "POST", "/_mock/device_keys", {
      token: CONTROL_TOKEN,
      body: { ...inject, surprise: 1 },
    });
    const missingKeys = await call(h, "POST", "/_mock/device_keys", {
      token: CONTROL_TOKEN,
      body: { user_id: bob.userId, device_id: "EVIL1" },
    });
    const nothing = await call(h, "POST", "/_mock/send_to_device_as", { token: CONTROL_TOKEN, body: sendAs });

    expect(noToken).toMatchObject({ status: 401, body: { errcode: "M_MISSING_TOKEN" } });
    expect(bobsToken).toMatchObject({ status: 403, body: { errcode: "M_UNKNOWN_TOKEN" } });
    expect(unknownField).toMatchObject({ status: 400, body: { errcode: "M_BAD_JSON" } });
    expect(missingKeys.status).toBe(400);
    expect(nothing).toMatchObject({ status: 200, body: { delivered: 0 } });
    expect(h.homeserver.state.accounts.deviceIds(bob.userId)).toEqual([bob.deviceId]);
  });

  it("answer a refused call with 400 M_INVALID_PARAM and the call's own message", async () => {
    const h = await start();
    const bob = await registerUser(h, "bob");

    const res = await call(h, "POST", "/_mock/device_keys", {
      body: { user_id: bob.userId, device_id: "EVIL1", device_keys: hostileKeys(bob.userId, "OTHER") },
    });

    expect(res).toMatchObject({
      status: 400,
      body: { errcode: "M_INVALID_PARAM", error: "deviceKeys.device_id must be EVIL1" },
    });
  });
});
