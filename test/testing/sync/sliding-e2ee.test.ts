import { describe, expect, it } from "vitest";
import { e2eeExtension, type SlidingE2eeFlags } from "../../../src/testing/sync/sliding-e2ee.js";

const synapse: SlidingE2eeFlags = {
  slidingE2eeKeyFields: "always",
  slidingE2eeDeviceLists: "when-pos",
  slidingOmitZeroKeyCounts: false,
  slidingSendsFallbackKeyTypes: true,
};
const msc: SlidingE2eeFlags = {
  ...synapse,
  slidingE2eeKeyFields: "when-changed",
  slidingE2eeDeviceLists: "when-nonempty",
};
const noLists = { changed: [], left: [] };

describe("e2eeExtension", () => {
  it("is news for the long-poll only through device lists under Synapse", () => {
    const held = { oneTimeKeyCounts: { signed_curve25519: 5 }, unusedFallbackKeyTypes: [] };
    const countsChanged = e2eeExtension(
      { oneTimeKeyCounts: { signed_curve25519: 4 }, unusedFallbackKeyTypes: [], deviceLists: noLists },
      held,
      synapse,
    );
    const listsChanged = e2eeExtension(
      {
        oneTimeKeyCounts: { signed_curve25519: 5 },
        unusedFallbackKeyTypes: [],
        deviceLists: { changed: ["@b:x"], left: [] },
      },
      held,
      synapse,
    );
    expect(countsChanged.hasNews).toBe(false);
    expect(listsChanged.hasNews).toBe(true);
  });

  it("treats a changed key field as news under delta semantics, but not a first response", () => {
    const current = {
      oneTimeKeyCounts: { signed_curve25519: 4 },
      unusedFallbackKeyTypes: [],
      deviceLists: noLists,
    };
    expect(
      e2eeExtension(current, { oneTimeKeyCounts: { signed_curve25519: 5 }, unusedFallbackKeyTypes: [] }, msc),
    ).toEqual({
      wire: { device_one_time_keys_count: { signed_curve25519: 4 } },
      held: { oneTimeKeyCounts: { signed_curve25519: 4 }, unusedFallbackKeyTypes: [] },
      hasNews: true,
    });
    expect(e2eeExtension({ ...current, deviceLists: undefined }, undefined, msc).hasNews).toBe(false);
  });

  it("compares fallback key types as a set, so a reordering is not a change", () => {
    const result = e2eeExtension(
      { oneTimeKeyCounts: {}, unusedFallbackKeyTypes: ["b", "a"], deviceLists: noLists },
      { oneTimeKeyCounts: {}, unusedFallbackKeyTypes: ["a", "b"] },
      msc,
    );
    expect(result.wire).toEqual({});
  });

  it("keeps what the client holds when a zero count is left out", () => {
    const result = e2eeExtension(
      { oneTimeKeyCounts: { signed_curve25519: 0 }, unusedFallbackKeyTypes: [], deviceLists: noLists },
      { oneTimeKeyCounts: { signed_curve25519: 3 }, unusedFallbackKeyTypes: [] },
      { ...synapse, slidingOmitZeroKeyCounts: true },
    );
    expect(result.wire).not.toHaveProperty("device_one_time_keys_count");
    expect(result.held.oneTimeKeyCounts).toEqual({ signed_curve25519: 3 });
  });
});
