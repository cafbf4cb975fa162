import {
  DeviceId,
  type DeviceLists,
  initAsync,
  type OlmMachine,
  type UserId,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import type { CryptoEvents } from "../../src/crypto/crypto-events.js";
import { refreshDeviceLists } from "../../src/crypto/refresh-device-lists.js";
import {
  type EvidenceMachine,
  listedDevices,
  signingSnapshot,
} from "../../src/device-lists/device-evidence.js";
import { TypedEmitter } from "../../src/events/emitter.js";

/**
 * Who frees which wasm object. crypto-wasm's glue (`matrix_sdk_crypto_wasm_bg.js`) shows it: a
 * method that asserts an argument's class and reads its pointer only borrows it (`getUserDevices`,
 * `getIdentity`, `receiveSyncChangesMsc4186`'s `DeviceLists`), so the caller frees it; one that
 * calls `__destroy_into_raw` takes it over (`updateTrackedUsers`, the `DeviceLists` constructor);
 * and a getter such as `Device.deviceId` hands out a new object on every read. The fakes below
 * behave like crypto-wasm and keep every object they were lent or handed out.
 */

beforeAll(async () => {
  await initAsync();
});

const BOB = "@bob:home.example";

function freed(object: object): boolean {
  return (object as { __wbg_ptr: number }).__wbg_ptr === 0;
}

function machineWith(deviceIds: string[]) {
  const lent: UserId[] = [];
  const handedOut: DeviceId[] = [];
  const device = (id: string) => ({
    get deviceId() {
      const deviceId = new DeviceId(id);
      handedOut.push(deviceId);
      return deviceId;
    },
    curve25519Key: undefined,
    isDeleted: () => false,
    isCrossSignedByOwner: () => false,
    free() {},
  });
  const machine = {
    async getUserDevices(user: UserId) {
      lent.push(user);
      return { devices: () => deviceIds.map(device), free() {} };
    },
    async getIdentity(user: UserId) {
      lent.push(user);
      return { free() {} };
    },
    async trackedUsers() {
      return new Set();
    },
  } as unknown as EvidenceMachine;
  return { machine, lent, handedOut };
}

describe("the device-list reads free what crypto-wasm lends and hands out", () => {
  it("listedDevices frees the UserId it lends and each DeviceId the getter hands out", async () => {
    const { machine, lent, handedOut } = machineWith(["A", "B"]);
    const listed = await listedDevices(machine, BOB);
    expect(listed.map((d) => d.deviceId)).toEqual(["A", "B"]);
    expect(lent).toHaveLength(1);
    expect(lent.every(freed)).toBe(true);
    expect(handedOut).toHaveLength(2);
    expect(handedOut.every(freed)).toBe(true);
  });

  it("signingSnapshot frees both UserIds it lends and each DeviceId", async () => {
    const { machine, lent, handedOut } = machineWith(["A", "B", "C"]);
    const snapshot = await signingSnapshot(machine, BOB, { userId: "@alice:home.example", deviceId: "X" });
    expect(snapshot.devices.map((d) => d.deviceId)).toEqual(["A", "B", "C"]);
    expect(lent).toHaveLength(2);
    expect(lent.every(freed)).toBe(true);
    expect(handedOut).toHaveLength(3);
    expect(handedOut.every(freed)).toBe(true);
  });

  it("refreshDeviceLists frees the DeviceLists it lends to receiveSyncChangesMsc4186", async () => {
    const lentLists: DeviceLists[] = [];
    const machine = {
      // Takes the ids over, as crypto-wasm does.
      async updateTrackedUsers(users: UserId[]) {
        for (const user of users) user.free();
      },
      async receiveSyncChangesMsc4186(_toDevice: string, lists: DeviceLists) {
        lentLists.push(lists);
        return "[]";
      },
    } as unknown as Pick<OlmMachine, "updateTrackedUsers" | "receiveSyncChangesMsc4186">;
    const events = new TypedEmitter<CryptoEvents>();
    const loop = {
      events,
      stopped: false,
      async run() {
        events.emit("requestSent", { requestId: "q", kind: "KeysQuery" });
      },
    };
    await refreshDeviceLists(machine, loop, [BOB]);
    expect(lentLists).toHaveLength(1);
    expect(lentLists.every(freed)).toBe(true);
  });
});
