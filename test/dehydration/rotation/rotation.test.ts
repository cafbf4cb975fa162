import { describe, expect, it } from "vitest";
import { DehydrationError } from "../../../src/dehydration/device/errors.js";
import type { DrainCallOptions, DrainOutcome } from "../../../src/dehydration/drain/drainer.js";
import { DrainError } from "../../../src/dehydration/drain/errors.js";
import {
  DehydratedDeviceRotation,
  type RotationDrainer,
  type RotationEvents,
  type RotationManager,
} from "../../../src/dehydration/rotation/rotation.js";
import { defaultRotateEveryMs } from "../../../src/dehydration/rotation/rotation-plan.js";
import { MemoryStateStore } from "../../../src/state/memory-state-store.js";
import { ManualClock } from "../../../src/testing/manual-clock.js";
import { completedDrain, truncatedDrain } from "../support/drain-outcomes.js";

const week = defaultRotateEveryMs;

/** The server's one device slot and the calls made on it, in order. */
class FakeManager implements RotationManager {
  device: string | undefined;
  readonly calls: string[];
  #next = 1;
  uploadError: unknown;

  constructor(calls: string[], device?: string) {
    this.calls = calls;
    this.device = device;
  }

  async fetchDevice() {
    this.calls.push("fetch");
    return this.device === undefined ? undefined : { deviceId: this.device };
  }

  async createAndUpload() {
    this.calls.push("upload");
    if (this.uploadError !== undefined) throw this.uploadError;
    this.device = `D${this.#next++}`;
    return { deviceId: this.device };
  }

  async loadKey() {
    this.calls.push("loadKey");
    return true;
  }
}

class FakeDrainer implements RotationDrainer {
  /** What the next drains return (or throw); default: completed for the server's device. */
  readonly script: (DrainOutcome | Error | "hang")[] = [];
  readonly options: DrainCallOptions[] = [];

  constructor(
    readonly calls: string[],
    readonly manager: FakeManager,
  ) {}

  async drain(options: DrainCallOptions = {}): Promise<DrainOutcome> {
    this.calls.push(`drain ${this.manager.device}`);
    this.options.push(options);
    const next = this.script.shift();
    if (next === "hang") {
      return new Promise((_, reject) =>
        options.signal?.addEventListener("abort", () => reject(options.signal?.reason), { once: true }),
      );
    }
    if (next instanceof Error) throw next;
    if (next !== undefined) return next;
    if (this.manager.device === undefined) return { outcome: "no_device" };
    return completedDrain(this.manager.device);
  }
}

function setup(serverDevice?: string) {
  const calls: string[] = [];
  const clock = new ManualClock();
  const manager = new FakeManager(calls, serverDevice);
  const drainer = new FakeDrainer(calls, manager);
  const stateStore = new MemoryStateStore();
  const seen: { name: keyof RotationEvents; payload: unknown }[] = [];
  const make = () => {
    const rotation = new DehydratedDeviceRotation({
      manager,
      drainer,
      stateStore,
      userId: "@alice:example.org",
      clock,
    });
    for (const name of ["scheduled", "replaced", "adopted", "kept", "failed"] as const) {
      rotation.events.on(name, (payload) => seen.push({ name, payload }));
    }
    return rotation;
  };
  const next = (rotation: DehydratedDeviceRotation, name: keyof RotationEvents) =>
    new Promise((resolve) => rotation.events.once(name, resolve));
  return { calls, clock, manager, drainer, stateStore, seen, make, next };
}

describe("DehydratedDeviceRotation", () => {
  it("counts a device uploaded outside it (after an identity reset) as its own: the next start waits", async () => {
    const t = setup("RESET1");
    const rotation = t.make();
    await rotation.noteUploaded("RESET1");
    expect(await rotation.record()).toEqual({
      deviceId: "RESET1",
      sinceMs: t.clock.now(),
      uploadedHere: true,
    });
    expect(await rotation.start()).toEqual({
      action: "waited",
      deviceId: "RESET1",
      dueAtMs: t.clock.now() + week,
    });
    expect(t.calls).toEqual(["fetch"]);
    expect(t.seen.map((e) => e.name)).not.toContain("adopted");
    await rotation.stop();
  });

  it("uploads a device when the server has none, remembers it, and schedules the next rotation", async () => {
    const t = setup();
    const rotation = t.make();
    const result = await rotation.start();
    expect(result).toEqual({
      action: "replaced",
      previousDeviceId: undefined,
      deviceId: "D1",
      dueAtMs: t.clock.now() + week,
    });
    expect(t.calls).toEqual(["fetch", "upload"]);
    expect(await rotation.record()).toEqual({ deviceId: "D1", sinceMs: t.clock.now(), uploadedHere: true });
    expect(t.seen.map((e) => e.name)).toEqual(["replaced", "scheduled"]);
    await rotation.stop();
  });

  it("does not drain or replace on a later start while its own device is not due", async () => {
    const t = setup();
    const first = t.make();
    const uploaded = await first.start();
    if (uploaded.action !== "replaced") throw new Error("expected an upload");
    await first.stop();
    await t.clock.advance(24 * 60 * 60 * 1000);
    t.calls.length = 0;

    const restarted = t.make();
    expect(await restarted.start()).toEqual({ action: "waited", deviceId: "D1", dueAtMs: uploaded.dueAtMs });
    expect(t.calls).toEqual(["fetch"]);
    await restarted.stop();
  });

  it("drains then replaces a device waiting for this new login", async () => {
    const t = setup("WAITING");
    const rotation = t.make();
    expect(await rotation.start()).toMatchObject({
      action: "replaced",
      previousDeviceId: "WAITING",
      deviceId: "D1",
    });
    expect(t.calls).toEqual(["fetch", "drain WAITING", "fetch", "upload"]);
    expect(t.seen.find((e) => e.name === "replaced")?.payload).toEqual({
      previousDeviceId: "WAITING",
      deviceId: "D1",
      reason: "new_login",
    });
    await rotation.stop();
  });

  it("adopts a waiting device without draining when told not to rehydrate, and drains it when due", async () => {
    const t = setup("WAITING");
    const rotation = t.make();
    expect(await rotation.start({ rehydrate: false })).toMatchObject({
      action: "adopted",
      deviceId: "WAITING",
    });
    expect(t.calls).toEqual(["fetch"]);
    const replaced = t.next(rotation, "replaced");
    await t.clock.advance(week);
    expect(await replaced).toEqual({ previousDeviceId: "WAITING", deviceId: "D1", reason: "due" });
    expect(t.calls).toEqual(["fetch", "fetch", "drain WAITING", "fetch", "upload"]);
    await rotation.stop();
  });

  it("uploads exactly when due, after draining its own device to the end", async () => {
    const t = setup();
    const rotation = t.make();
    await rotation.start({ rotateEveryMs: 60_000 });
    t.calls.length = 0;
    await t.clock.advance(59_999);
    expect(t.calls).toEqual([]);
    const replaced = t.next(rotation, "replaced");
    await t.clock.advance(1);
    expect(await replaced).toEqual({ previousDeviceId: "D1", deviceId: "D2", reason: "due" });
    expect(t.calls).toEqual(["fetch", "drain D1", "fetch", "upload"]);
    expect(await rotation.record()).toMatchObject({ deviceId: "D2", sinceMs: t.clock.now() });
    await rotation.stop();
  });

  it("backs off when another client rotated: re-reads the key and reschedules without uploading", async () => {
    const t = setup();
    const rotation = t.make();
    await rotation.start({ rotateEveryMs: 60_000 });
    t.manager.device = "THEIRS";
    t.calls.length = 0;
    const adopted = t.next(rotation, "adopted");
    await t.clock.advance(60_000);
    expect(await adopted).toEqual({ deviceId: "THEIRS", reason: "replaced_elsewhere" });
    expect(t.calls).toEqual(["fetch", "loadKey"]);
    expect(await rotation.record()).toEqual({
      deviceId: "THEIRS",
      sinceMs: t.clock.now(),
      uploadedHere: false,
    });
    // A full interval from now, not from our old schedule.
    expect(t.seen.at(-1)).toEqual({
      name: "scheduled",
      payload: { deviceId: "THEIRS", dueAtMs: t.clock.now() + 60_000, reason: "interval" },
    });
    await rotation.stop();
  });

  it("does not replace a device another client put there while it was draining", async () => {
    const t = setup("OLD");
    const rotation = t.make();
    t.drainer.script.push(completedDrain("OLD"));
    const manager = t.manager;
    const original = manager.fetchDevice.bind(manager);
    let fetches = 0;
    manager.fetchDevice = async () => {
      if (++fetches === 2) manager.device = "THEIRS";
      return original();
    };
    expect(await rotation.start()).toMatchObject({ action: "adopted", deviceId: "THEIRS" });
    expect(t.calls).not.toContain("upload");
    await rotation.stop();
  });

  it("keeps the device after a truncated drain, and retries with backoff without uploading", async () => {
    const t = setup("WAITING");
    const rotation = t.make();
    t.drainer.script.push(truncatedDrain("WAITING"));
    const result = await rotation.start();
    expect(result).toEqual({ action: "kept", deviceId: "WAITING", retryAtMs: t.clock.now() + 60_000 });
    expect(t.calls).toEqual(["fetch", "drain WAITING"]);
    expect(t.seen.find((e) => e.name === "kept")?.payload).toEqual({
      deviceId: "WAITING",
      reason: "repeated_cursor",
    });

    // The retry drains again; this time to the end, so the device is replaced.
    const replaced = t.next(rotation, "replaced");
    await t.clock.advance(60_000);
    expect(await replaced).toMatchObject({ previousDeviceId: "WAITING", reason: "new_login" });
    await rotation.stop();
  });

  it("keeps the device after a failed drain, reports it, and never uploads or touches the key", async () => {
    const t = setup("WAITING");
    const rotation = t.make();
    const failure = new DehydrationError("wrong_key", "The dehydration key does not open the device");
    t.drainer.script.push(failure, failure);
    const result = await rotation.start();
    expect(result).toMatchObject({ action: "kept", deviceId: "WAITING" });
    expect(t.seen.filter((e) => e.name === "failed").map((e) => e.payload)).toEqual([
      { stage: "drain", error: failure, retryAtMs: t.clock.now() + 60_000 },
    ]);
    const failed = t.next(rotation, "failed");
    await t.clock.advance(60_000);
    // The second failure in a row waits twice as long.
    expect(await failed).toMatchObject({ stage: "drain", retryAtMs: t.clock.now() + 120_000 });
    expect(t.calls.filter((c) => c === "upload" || c === "loadKey")).toEqual([]);
    await rotation.stop();
  });

  it("reports a server without MSC3814 once and does not retry", async () => {
    const t = setup();
    t.manager.uploadError = new DehydrationError("unsupported", "no MSC3814");
    const rotation = t.make();
    expect(await rotation.start()).toEqual({ action: "failed", retryAtMs: undefined });
    expect(t.clock.pendingSleeps).toBe(0);
    await rotation.stop();
  });

  it("stop() cancels the schedule on the ManualClock", async () => {
    const t = setup();
    const rotation = t.make();
    await rotation.start({ rotateEveryMs: 60_000 });
    expect(t.clock.pendingSleeps).toBe(1);
    await rotation.stop();
    expect(t.clock.pendingSleeps).toBe(0);
    t.calls.length = 0;
    await t.clock.advance(10 * 60_000);
    expect(t.calls).toEqual([]);
    expect(rotation.started).toBe(false);
  });

  it("stop() cancels a drain in flight without reporting a failure or uploading", async () => {
    const t = setup();
    const rotation = t.make();
    await rotation.start({ rotateEveryMs: 60_000 });
    t.drainer.script.push("hang");
    const failuresBefore = t.seen.filter((e) => e.name === "failed").length;
    await t.clock.advance(60_000);
    expect(t.calls.at(-1)).toBe("drain D1");
    await rotation.stop();
    expect(t.drainer.options.at(-1)?.signal?.aborted).toBe(true);
    expect(t.seen.filter((e) => e.name === "failed").length).toBe(failuresBefore);
    expect(t.calls.filter((c) => c === "upload")).toHaveLength(1);
  });

  it("refuses a second start while running", async () => {
    const t = setup();
    const rotation = t.make();
    await rotation.start();
    await expect(rotation.start()).rejects.toMatchObject({ code: "rotation_already_started" });
    await rotation.stop();
  });

  it("replaceNow() refuses to replace after a truncated drain unless forced", async () => {
    const t = setup("OLD");
    const rotation = t.make();
    t.drainer.script.push(truncatedDrain("OLD"), truncatedDrain("OLD"));
    await expect(rotation.replaceNow()).rejects.toMatchObject({ code: "drain_incomplete" });
    expect(t.calls).not.toContain("upload");
    expect(await rotation.replaceNow({ force: true })).toMatchObject({
      action: "replaced",
      previousDeviceId: "OLD",
      deviceId: "D1",
    });
    expect(t.seen.find((e) => e.name === "replaced")?.payload).toMatchObject({ reason: "forced" });
  });

  it("replaceNow() passes a failed drain on unless forced", async () => {
    const t = setup("OLD");
    const rotation = t.make();
    const failure = new DrainError("fetch_failed", "no network", {
      details: { deviceId: "OLD", cursor: undefined, pages: 0, events: 0, roomKeys: 0 },
    });
    t.drainer.script.push(failure);
    await expect(rotation.replaceNow()).rejects.toBe(failure);
    expect(t.calls).not.toContain("upload");
  });
});
