import type { UserId, DeviceLists as WasmDeviceLists } from "@matrix-org/matrix-sdk-crypto-wasm";
import type { CryptoEvents } from "../../../src/crypto/crypto-events.js";
import { DeviceLists, type DeviceListsMachine } from "../../../src/device-lists/device-lists.js";
import { MSC2638_FEATURE } from "../../../src/device-lists/msc2638.js";
import { type DeviceListsOptions, deviceListsSettings } from "../../../src/device-lists/options.js";
import type { DeviceListTrust } from "../../../src/device-lists/trust.js";
import { TypedEmitter } from "../../../src/events/emitter.js";
import { silentLogger } from "../../../src/logger.js";
import { ManualClock } from "../../../src/testing/manual-clock.js";
import { FakeMatrixHttp } from "../../crypto/support/fake-matrix-http.js";

/**
 * A `DeviceLists` over fakes: a machine that holds plain device lists, a key-query loop that
 * answers from them (and names failing servers as a homeserver's `failures` would), a transport
 * for the MSC2638 call, and a `ManualClock`. The facade's wiring is played by hand: the loop feeds
 * `keysQueried` back, as `client.ts` does with `crypto.keysQueried`.
 */

export interface FakeDevice {
  deviceId: string;
  curve25519Key: string;
  signed?: boolean;
}

export class FakeMachine implements DeviceListsMachine {
  readonly devices = new Map<string, FakeDevice[]>();
  readonly identities = new Set<string>();
  readonly tracked = new Set<string>();
  /** Users marked changed and not queried yet. */
  readonly dirty = new Set<string>();

  // Like crypto-wasm, the reads borrow the `UserId` they are given: freeing it is the caller's.
  async getUserDevices(user: UserId) {
    const id = user.toString();
    const list = this.devices.get(id) ?? [];
    return {
      devices: () =>
        list.map((d) => ({
          deviceId: { toString: () => d.deviceId, free() {} },
          curve25519Key: { toBase64: () => d.curve25519Key, free() {} },
          isDeleted: () => false,
          isCrossSignedByOwner: () => d.signed === true,
          free() {},
        })),
      free() {},
    } as never;
  }

  async getIdentity(user: UserId) {
    const id = user.toString();
    return (this.identities.has(id) ? { free() {} } : undefined) as never;
  }

  async trackedUsers() {
    return new Set([...this.tracked].map((u) => ({ toString: () => u, free() {} }))) as never;
  }

  async updateTrackedUsers(users: UserId[]) {
    for (const user of users) {
      if (!this.tracked.has(user.toString())) this.dirty.add(user.toString());
      this.tracked.add(user.toString());
      user.free();
    }
  }

  async receiveSyncChangesMsc4186(_toDevice: string, lists: WasmDeviceLists) {
    for (const user of lists.changed) {
      this.dirty.add(user.toString());
      user.free();
    }
    return [] as never;
  }
}

/**
 * Plays the homeserver's `keys/query`: 250 users per request, `failures` for unreachable servers.
 * Like `OutgoingRequestLoop`, one pass runs at a time and a `run()` during a pass asks for one more
 * pass afterwards; `gate` holds each query in flight until it resolves.
 */
export class FakeKeyQueries {
  readonly events = new TypedEmitter<CryptoEvents>();
  stopped = false;
  /** Every `keys/query` sent: the users it asked for. */
  readonly queries: string[][] = [];
  readonly unreachable = new Set<string>();
  /** While true, every request fails at the transport (this client's own homeserver is down). */
  homeserverDown = false;
  /** What a failing request fails with (`homeserverDown`). */
  failWith: unknown = new Error("down");
  /** While set, each query sent waits for it before it is answered (or fails). */
  gate: Promise<void> | undefined;
  onQueried: (users: string[], failedServers: string[]) => void = () => {};
  #running = false;
  #again = false;
  #current: Promise<void> | undefined;

  constructor(readonly machine: FakeMachine) {}

  /**
   * Servers whose users the machine leaves out of every query, as crypto-wasm does for a while
   * after a server appeared in `failures` (rust-sdk `FailuresCache`); they stay due.
   */
  readonly heldBack = new Set<string>();

  get running(): boolean {
    return this.#running;
  }

  run(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#current as Promise<void>;
    }
    this.#running = true;
    let resolve!: () => void;
    const current = new Promise<void>((r) => {
      resolve = r;
    });
    this.#current = current;
    void this.#drive().then(() => {
      this.#running = false;
      this.#current = undefined;
      resolve();
    });
    return current;
  }

  async #drive(): Promise<void> {
    do {
      this.#again = false;
      await this.#pass();
    } while (this.#again && !this.stopped);
  }

  async #pass(): Promise<void> {
    const held = (u: string) => this.heldBack.has(u.slice(u.indexOf(":") + 1));
    const users = [...this.machine.dirty].filter((u) => !held(u));
    for (const u of users) this.machine.dirty.delete(u);
    for (let i = 0; i < users.length; i += 250) {
      const batch = users.slice(i, i + 250);
      this.queries.push(batch);
      if (this.gate !== undefined) await this.gate;
      if (this.homeserverDown) {
        for (const u of batch) this.machine.dirty.add(u);
        this.events.emit("requestFailed", { requestId: "q", kind: "KeysQuery", error: this.failWith });
        continue;
      }
      this.events.emit("requestSent", { requestId: "q", kind: "KeysQuery" });
      const failed = [...new Set(batch.map((u) => u.slice(u.indexOf(":") + 1)))].filter((s) =>
        this.unreachable.has(s),
      );
      this.onQueried(batch, failed);
    }
  }
}

export const REFRESH = /\/devices\/refresh$/;

export function deviceListsOver(
  options: { msc2638?: boolean; settings?: DeviceListsOptions; refresh?: (userId: string) => unknown } = {},
) {
  const machine = new FakeMachine();
  const loop = new FakeKeyQueries(machine);
  const http = new FakeMatrixHttp();
  const refreshes: string[] = [];
  http.on("POST", REFRESH, (call) => {
    const userId = decodeURIComponent(call.path.split("/").at(-3) ?? "");
    refreshes.push(userId);
    return options.refresh ? options.refresh(userId) : {};
  });
  const clock = new ManualClock();
  const closing = new AbortController();
  const events: { userId: string; trust: DeviceListTrust }[] = [];
  const settings = deviceListsSettings(options.settings);
  if (!settings.ok) throw new Error(settings.problem);
  const lists = new DeviceLists({
    machine,
    keyQueries: loop,
    http: {
      request: http.request.bind(http),
      getVersions: async () => ({
        versions: ["v1.12"],
        unstableFeatures: { [MSC2638_FEATURE]: options.msc2638 === true },
      }),
    },
    userId: "@alice:home.example",
    deviceId: "ALICE1",
    settings: settings.settings,
    clock,
    logger: silentLogger,
    signal: closing.signal,
    assertOpen: () => {
      if (closing.signal.aborted) throw new Error("closed");
    },
    emit: (name, payload) => {
      if (name === "deviceLists.trustChanged") events.push(payload as (typeof events)[number]);
    },
  });
  loop.onQueried = (users, failed) => lists.keysQueried(users, failed);
  return {
    lists,
    machine,
    loop,
    http,
    refreshes,
    clock,
    events,
    /** The owner's signal fires (the client fires it before it closes the device lists). */
    abort: () => closing.abort(new Error("closed")),
    close: async () => {
      closing.abort(new Error("closed"));
      await lists.close();
    },
  };
}

/** Lets promise chains and the clock's zero-delay work settle. */
export async function settle(clock: ManualClock): Promise<void> {
  await clock.advance(0);
}
