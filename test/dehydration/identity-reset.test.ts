import { describe, expect, it } from "vitest";
import { DehydrationError } from "../../src/dehydration/device/errors.js";
import type { DrainCallOptions, DrainOutcome } from "../../src/dehydration/drain/drainer.js";
import { DrainError, type DrainErrorCode } from "../../src/dehydration/drain/errors.js";
import type { DrainEvents } from "../../src/dehydration/drain/events.js";
import {
  drainBeforeIdentityReset,
  type PostResetManager,
  type PreResetDrain,
  type PreResetDrainer,
  replaceAfterIdentityReset,
} from "../../src/dehydration/identity-reset.js";
import { TypedEmitter } from "../../src/events/emitter.js";
import { completedDrain, truncatedDrain } from "./support/drain-outcomes.js";

/**
 * The two halves around an identity reset, with a scripted drainer and manager: which drain results
 * let the device be replaced, which leave it stale and why, and that only the drained device is
 * ever replaced. The end-to-end order is in `test/integration/dehydration-identity-reset.test.ts`.
 */

const ssKey = { keyId: "KEY", key: new Uint8Array(32).fill(3) };
/** Drains with one scripted result; emits `found` for `deviceId` first, as the real one does. */
class ScriptedDrainer implements PreResetDrainer {
  readonly events = new TypedEmitter<DrainEvents>();
  readonly options: DrainCallOptions[] = [];

  constructor(
    readonly result: DrainOutcome | Error,
    readonly deviceId?: string,
  ) {}

  async drain(options: DrainCallOptions = {}): Promise<DrainOutcome> {
    this.options.push(options);
    if (this.deviceId !== undefined)
      this.events.emit("found", { deviceId: this.deviceId, resumeFrom: undefined });
    if (this.result instanceof Error) throw this.result;
    return this.result;
  }
}

class ScriptedManager implements PostResetManager {
  readonly uploads: unknown[] = [];
  uploadError: Error | undefined;

  constructor(public device: string | undefined) {}

  async fetchDevice() {
    return this.device === undefined ? undefined : { deviceId: this.device };
  }

  async createAndUpload(options: unknown = {}) {
    this.uploads.push(options);
    if (this.uploadError !== undefined) throw this.uploadError;
    this.device = "NEW";
    return { deviceId: "NEW" };
  }
}

const drainError = (code: DrainErrorCode, deviceId: string | undefined, cause?: unknown) =>
  new DrainError(code, "drain stopped", {
    cause,
    details: { deviceId, cursor: "c1", pages: 1, events: 1, roomKeys: 1 },
  });

async function drainFirst(drainer: PreResetDrainer, signal = new AbortController().signal) {
  return drainBeforeIdentityReset({ drainer, secretStorageKey: ssKey, signal });
}

describe("drainBeforeIdentityReset", () => {
  it("passes the secret-storage key and the signal to the drain", async () => {
    const drainer = new ScriptedDrainer(completedDrain("OLD"));
    const signal = new AbortController().signal;
    expect(await drainFirst(drainer, signal)).toEqual({ kind: "drained", deviceId: "OLD" });
    expect(drainer.options).toEqual([{ secretStorageKey: ssKey, signal }]);
  });

  it.each([
    ["no device", { outcome: "no_device" } as DrainOutcome, undefined, { kind: "none" }],
    [
      "a truncated drain",
      truncatedDrain("OLD"),
      "OLD",
      { kind: "not_drained", deviceId: "OLD", reason: "drain_truncated", error: undefined },
    ],
  ])("maps %s to %j", async (_name, result, found, expected) => {
    expect(await drainFirst(new ScriptedDrainer(result, found))).toEqual(expected);
  });

  it.each([
    ["a failed fetch", drainError("fetch_failed", "OLD"), undefined, "OLD", "drain_failed"],
    [
      "a refused device",
      drainError("device_rejected", "EVIL", new DehydrationError("device_rejected", "refused")),
      undefined,
      "EVIL",
      "rejected",
    ],
    [
      "an identity this login does not trust yet",
      drainError("cross_signing_not_restored", "OLD"),
      undefined,
      "OLD",
      "rejected",
    ],
    [
      "no key",
      drainError("key_unavailable", "OLD", new DehydrationError("no_key", "no key")),
      undefined,
      "OLD",
      "cannot_open",
    ],
    [
      "an unknown algorithm",
      drainError("unsupported_device_algorithm", "OLD"),
      undefined,
      "OLD",
      "cannot_open",
    ],
    ["a key query that failed", drainError("fetch_failed", undefined), undefined, undefined, "drain_failed"],
    ["an error from elsewhere, named by found", new Error("network down"), "OLD", "OLD", "drain_failed"],
  ])("keeps the device after %s, naming it and saying why", async (_name, error, found, deviceId, reason) => {
    expect(await drainFirst(new ScriptedDrainer(error, found))).toEqual({
      kind: "not_drained",
      deviceId,
      reason,
      error,
    });
  });

  it("rejects when aborted, so the reset does not go ahead either", async () => {
    const controller = new AbortController();
    controller.abort(new Error("closed"));
    const failure = new Error("network aborted");
    await expect(drainFirst(new ScriptedDrainer(failure, "OLD"), controller.signal)).rejects.toBe(failure);
    const aborted = drainError("aborted", "OLD");
    await expect(drainFirst(new ScriptedDrainer(aborted, "OLD"))).rejects.toBe(aborted);
  });
});

describe("replaceAfterIdentityReset", () => {
  const replaceAfter = (drained: PreResetDrain, manager: ScriptedManager) =>
    replaceAfterIdentityReset(drained, {
      manager,
      secretStorageKey: ssKey,
      signal: new AbortController().signal,
    });

  it("replaces the drained device with the secret-storage key", async () => {
    const manager = new ScriptedManager("OLD");
    expect(await replaceAfter({ kind: "drained", deviceId: "OLD" }, manager)).toEqual({
      outcome: "replaced",
      previousDeviceId: "OLD",
      deviceId: "NEW",
    });
    expect(manager.uploads).toEqual([expect.objectContaining({ secretStorageKey: ssKey })]);
  });

  it("does not replace a device other than the one drained", async () => {
    const manager = new ScriptedManager("THEIRS");
    expect(await replaceAfter({ kind: "drained", deviceId: "OLD" }, manager)).toEqual({
      outcome: "stale",
      deviceId: "THEIRS",
      reason: "device_changed",
      error: undefined,
    });
    expect(manager.uploads).toEqual([]);
  });

  it("uploads nothing when the device is gone, or there was none", async () => {
    const gone = new ScriptedManager(undefined);
    expect(await replaceAfter({ kind: "drained", deviceId: "OLD" }, gone)).toEqual({ outcome: "none" });
    expect(await replaceAfter({ kind: "none" }, gone)).toEqual({ outcome: "none" });
    expect(gone.uploads).toEqual([]);
  });

  it("reports an undrained device stale without touching it", async () => {
    const manager = new ScriptedManager("OLD");
    const error = drainError("fetch_failed", "OLD");
    expect(
      await replaceAfter({ kind: "not_drained", deviceId: "OLD", reason: "drain_failed", error }, manager),
    ).toEqual({ outcome: "stale", deviceId: "OLD", reason: "drain_failed", error });
    expect(manager.uploads).toEqual([]);
  });

  it("reports a failed upload as stale instead of throwing: the reset has happened", async () => {
    const manager = new ScriptedManager("OLD");
    manager.uploadError = new Error("503");
    expect(await replaceAfter({ kind: "drained", deviceId: "OLD" }, manager)).toEqual({
      outcome: "stale",
      deviceId: "OLD",
      reason: "replace_failed",
      error: manager.uploadError,
    });
  });
});
