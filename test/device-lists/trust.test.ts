import { describe, expect, it } from "vitest";
import {
  type DeviceListTrust,
  MAX_REASONS,
  mergeReasons,
  needsResync,
  reduceTrust,
  type TrustInput,
} from "../../src/device-lists/trust.js";
import type { ErrorInfo } from "../../src/errors/error-info.js";

/** The trust reducer: every state against every input, as a table. */

const U = "@dave:remote.example";
const ERROR: ErrorInfo = { name: "SdkError", code: "server_unreachable", message: "unreachable" };
const unknown: DeviceListTrust = { state: "unknown", userId: U };
const fresh: DeviceListTrust = { state: "fresh", userId: U, cleared: "client_only", refreshedAt: 1 };
const stale: DeviceListTrust = { state: "stale", userId: U, reasons: [{ kind: "reported" }] };
const refreshing: DeviceListTrust = {
  state: "refreshing",
  userId: U,
  reasons: [{ kind: "reported" }],
  via: "msc2638",
};
const failed: DeviceListTrust = {
  state: "failed",
  userId: U,
  reasons: [{ kind: "reported" }],
  server: "remote.example",
  nextRetryAt: 100,
  error: ERROR,
};

const evidence: TrustInput = { type: "evidence", reasons: [{ kind: "position_lost" }] };
const started: TrustInput = { type: "started", via: "requery" };
const refreshed: TrustInput = { type: "refreshed", cleared: "server_and_client", at: 50 };
const fail: TrustInput = {
  type: "failed",
  server: "remote.example",
  nextRetryAt: 200,
  error: ERROR,
  reason: { kind: "key_query_failed", server: "remote.example" },
};

describe("reduceTrust", () => {
  const cases: [string, DeviceListTrust, TrustInput, DeviceListTrust][] = [
    [
      "unknown + evidence → stale",
      unknown,
      evidence,
      { state: "stale", userId: U, reasons: [{ kind: "position_lost" }] },
    ],
    [
      "fresh + evidence → stale",
      fresh,
      evidence,
      { state: "stale", userId: U, reasons: [{ kind: "position_lost" }] },
    ],
    [
      "stale + evidence → stale with both reasons",
      stale,
      evidence,
      { state: "stale", userId: U, reasons: [{ kind: "reported" }, { kind: "position_lost" }] },
    ],
    [
      "refreshing + evidence → still refreshing, the reason joins",
      refreshing,
      evidence,
      { ...refreshing, reasons: [{ kind: "reported" }, { kind: "position_lost" }] },
    ],
    [
      "failed + evidence → still failed (the backoff decides), the reason joins",
      failed,
      evidence,
      { ...failed, reasons: [{ kind: "reported" }, { kind: "position_lost" }] },
    ],
    ["fresh + no evidence → unchanged", fresh, { type: "evidence", reasons: [] }, fresh],
    [
      "unknown + started → refreshing, requested",
      unknown,
      started,
      { state: "refreshing", userId: U, reasons: [{ kind: "requested" }], via: "requery" },
    ],
    [
      "stale + started → refreshing with its reasons",
      stale,
      started,
      { state: "refreshing", userId: U, reasons: [{ kind: "reported" }], via: "requery" },
    ],
    [
      "refreshing by MSC2638 + started requery → refreshing by requery (the fallback)",
      refreshing,
      started,
      { ...refreshing, via: "requery" },
    ],
    [
      "refreshing + refreshed → fresh, reasons gone",
      refreshing,
      refreshed,
      { state: "fresh", userId: U, cleared: "server_and_client", refreshedAt: 50 },
    ],
    [
      "stale + refreshed client_only → fresh client_only",
      stale,
      { type: "refreshed", cleared: "client_only", at: 7 },
      { state: "fresh", userId: U, cleared: "client_only", refreshedAt: 7 },
    ],
    [
      "refreshing + failed → failed with the failure's reason",
      refreshing,
      fail,
      {
        state: "failed",
        userId: U,
        reasons: [{ kind: "reported" }, { kind: "key_query_failed", server: "remote.example" }],
        server: "remote.example",
        nextRetryAt: 200,
        error: ERROR,
      },
    ],
    [
      "fresh + failed → failed",
      fresh,
      fail,
      {
        state: "failed",
        userId: U,
        reasons: [{ kind: "key_query_failed", server: "remote.example" }],
        server: "remote.example",
        nextRetryAt: 200,
        error: ERROR,
      },
    ],
    [
      "failed + refreshed → fresh (recovered)",
      failed,
      { type: "refreshed", cleared: "client_only", at: 300 },
      { state: "fresh", userId: U, cleared: "client_only", refreshedAt: 300 },
    ],
  ];
  it.each(cases)("%s", (_name, current, input, expected) => {
    expect(reduceTrust(current, input)).toEqual(expected);
  });

  it("is pure: the input trust is never changed", () => {
    const before = structuredClone(stale);
    reduceTrust(stale, evidence);
    reduceTrust(stale, fail);
    expect(stale).toEqual(before);
  });

  it("keeps each reason once, the newest MAX_REASONS", () => {
    const many = Array.from({ length: 20 }, (_, i) => ({ kind: "reported" as const, note: `n${i}` }));
    const merged = mergeReasons([{ kind: "position_lost" }], [...many, { kind: "position_lost" }]);
    expect(merged).toHaveLength(MAX_REASONS);
    expect(merged.at(-1)).toEqual({ kind: "position_lost" });
    expect(new Set(merged.map((r) => JSON.stringify(r))).size).toBe(merged.length);
  });

  it.each<[DeviceListTrust, boolean]>([
    [unknown, false],
    [fresh, false],
    [stale, true],
    [refreshing, true],
    [failed, true],
  ])("needsResync(%j) is %s", (trust, expected) => {
    expect(needsResync(trust)).toBe(expected);
  });
});
