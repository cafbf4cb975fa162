import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/testing/manual-clock.js";
import { createServerState, type ServerState } from "../../../src/testing/state/server-state.js";
import { type WaitOutcome, waitForChange } from "../../../src/testing/sync/wait-for-change.js";

const ALICE = "@alice:localhost";
const BOB = "@bob:localhost";

function setup() {
  const clock = new ManualClock();
  const state = createServerState("localhost", clock);
  return { clock, state };
}

function join(state: ServerState, roomId: string, userId: string) {
  if (!state.rooms.hasRoom(roomId)) state.rooms.createRoom(roomId);
  state.rooms.append(
    roomId,
    {
      type: "m.room.member",
      stateKey: userId,
      sender: userId,
      content: { membership: "join" },
      originServerTs: 0,
    },
    `$${roomId}${userId}`,
  );
}

/** Starts a wait and records its outcome once it settles. */
function start(state: ServerState, options: Partial<Parameters<typeof waitForChange>[1]> = {}) {
  const abort = new AbortController();
  const result: { outcome?: WaitOutcome } = {};
  void waitForChange(state, {
    userId: ALICE,
    deviceId: "DEV",
    timeoutMs: 30_000,
    signal: abort.signal,
    ...options,
  }).then((o) => {
    result.outcome = o;
  });
  return { result, abort };
}

describe("waitForChange", () => {
  it("times out on the mock's clock when nothing happens", async () => {
    const { clock, state } = setup();
    const { result } = start(state);

    await clock.advance(29_999);
    expect(result.outcome).toBeUndefined();
    await clock.advance(1);
    expect(result.outcome).toBe("timeout");
  });

  it("wakes for a to-device message to this device, not to another one", async () => {
    const { clock, state } = setup();
    const { result } = start(state);

    state.toDevice.enqueue(ALICE, "OTHER", { type: "m.x", sender: BOB, content: {} });
    await clock.advance(0);
    expect(result.outcome).toBeUndefined();
    state.toDevice.enqueue(ALICE, "DEV", { type: "m.x", sender: BOB, content: {} });
    await clock.advance(0);
    expect(result.outcome).toBe("changed");
    expect(clock.pendingSleeps).toBe(0);
  });

  it("wakes for the user's account data", async () => {
    const { clock, state } = setup();
    const { result } = start(state);

    state.accountData.set(BOB, "m.x", {});
    await clock.advance(0);
    expect(result.outcome).toBeUndefined();
    state.accountData.set(ALICE, "m.x", {});
    await clock.advance(0);
    expect(result.outcome).toBe("changed");
  });

  it("wakes for device-list changes only of users the viewer shares a room with", async () => {
    const { clock, state } = setup();
    const { result } = start(state);

    state.keys.noteDeviceListChange(BOB);
    await clock.advance(0);
    expect(result.outcome).toBeUndefined();

    join(state, "!r", BOB);
    await clock.advance(0);
    expect(result.outcome).toBeUndefined();

    const second = start(state);
    join(state, "!r", ALICE);
    await clock.advance(0);
    expect(second.result.outcome).toBe("changed");
    const third = start(state);
    state.keys.noteDeviceListChange(BOB);
    await clock.advance(0);
    expect(third.result.outcome).toBe("changed");
  });

  it("wakes for this device's key counts", async () => {
    const { clock, state } = setup();
    const { result } = start(state);

    state.keys.addOneTimeKeys(ALICE, "DEV", { "signed_curve25519:A": "k" });
    await clock.advance(0);
    expect(result.outcome).toBe("changed");
  });

  it("ignores stores the caller does not watch", async () => {
    const { clock, state } = setup();
    const { result } = start(state, { watch: { toDevice: false } });

    state.toDevice.enqueue(ALICE, "DEV", { type: "m.x", sender: BOB, content: {} });
    await clock.advance(0);
    expect(result.outcome).toBeUndefined();
  });

  it("ends with aborted when the client goes away, and then ignores changes", async () => {
    const { clock, state } = setup();
    const { result, abort } = start(state);

    abort.abort();
    await clock.advance(0);
    expect(result.outcome).toBe("aborted");
    expect(clock.pendingSleeps).toBe(0);
  });

  it("returns at once for a zero timeout", async () => {
    const { state } = setup();

    await expect(
      waitForChange(state, {
        userId: ALICE,
        deviceId: "DEV",
        timeoutMs: 0,
        signal: new AbortController().signal,
      }),
    ).resolves.toBe("timeout");
  });
});
