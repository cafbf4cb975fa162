import { describe, expect, it } from "vitest";
import {
  defaultRotateEveryMs,
  planRotationStep,
  type RotationInput,
  type RotationStep,
  rotationRetryDelayMs,
} from "../../../src/dehydration/rotation/rotation-plan.js";

const t0 = 1_700_000_000_000;
const week = defaultRotateEveryMs;
const ours = { deviceId: "OURS", sinceMs: t0, uploadedHere: true };

describe("planRotationStep", () => {
  const cases: { name: string; input: Partial<RotationInput>; expected: RotationStep }[] = [
    {
      name: "uploads when the server has no device and nothing is remembered",
      input: { record: undefined, serverDeviceId: undefined },
      expected: { kind: "upload" },
    },
    {
      name: "uploads when the server's device is gone although one is remembered",
      input: { record: ours, serverDeviceId: undefined },
      expected: { kind: "upload" },
    },
    {
      name: "drains and replaces a device waiting for this new login",
      input: { record: undefined, serverDeviceId: "WAITING" },
      expected: { kind: "drain-and-replace", deviceId: "WAITING", reason: "new_login" },
    },
    {
      name: "adopts a device waiting for a new login when told not to rehydrate",
      input: { record: undefined, serverDeviceId: "WAITING", rehydrate: false },
      expected: { kind: "adopt", deviceId: "WAITING", reason: "not_rehydrating" },
    },
    {
      name: "waits while its own device is younger than the interval (not on every start)",
      input: { record: ours, serverDeviceId: "OURS", nowMs: t0 + week - 1 },
      expected: { kind: "wait", deviceId: "OURS", dueAtMs: t0 + week },
    },
    {
      name: "drains and replaces its own device exactly when the interval has passed",
      input: { record: ours, serverDeviceId: "OURS", nowMs: t0 + week },
      expected: { kind: "drain-and-replace", deviceId: "OURS", reason: "due" },
    },
    {
      name: "drains and replaces an adopted device when due, as its own",
      input: { record: { ...ours, uploadedHere: false }, serverDeviceId: "OURS", nowMs: t0 + 2 * week },
      expected: { kind: "drain-and-replace", deviceId: "OURS", reason: "due" },
    },
    {
      name: "adopts the device another client put there instead of fighting, even when due",
      input: { record: ours, serverDeviceId: "THEIRS", nowMs: t0 + 3 * week },
      expected: { kind: "adopt", deviceId: "THEIRS", reason: "replaced_elsewhere" },
    },
    {
      name: "follows a custom interval",
      input: { record: ours, serverDeviceId: "OURS", nowMs: t0 + 1_000, rotateEveryMs: 1_000 },
      expected: { kind: "drain-and-replace", deviceId: "OURS", reason: "due" },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const input: RotationInput = {
        record: undefined,
        serverDeviceId: undefined,
        nowMs: t0 + 1,
        rotateEveryMs: week,
        rehydrate: true,
        ...c.input,
      };
      expect(planRotationStep(input)).toEqual(c.expected);
    });
  }
});

describe("rotationRetryDelayMs", () => {
  const cases: [number, number, number][] = [
    [1, week, 60_000],
    [2, week, 120_000],
    [3, week, 240_000],
    [20, week, 6 * 60 * 60 * 1000],
    [4, 100_000, 100_000],
  ];
  for (const [failures, interval, expected] of cases) {
    it(`waits ${expected} ms after failure ${failures} with an interval of ${interval} ms`, () => {
      expect(rotationRetryDelayMs(failures, interval)).toBe(expected);
    });
  }
});
