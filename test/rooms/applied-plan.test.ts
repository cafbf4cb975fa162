import { describe, expect, it } from "vitest";
import {
  appliedFromRequests,
  deviceKey,
  mergeApplied,
  planDifferences,
} from "../../src/rooms/applied-plan.js";
import type { RecipientDecision, RecipientPlan } from "../../src/rooms/recipient-plan.js";

const encrypted = (messages: Record<string, Record<string, unknown>>) => ({
  event_type: "m.room.encrypted",
  body: JSON.stringify({ messages }),
});
const withheld = (messages: Record<string, Record<string, { code: string }>>) => ({
  event_type: "m.room_key.withheld",
  body: JSON.stringify({ messages }),
});
const decision = (deviceId: string, d: Partial<RecipientDecision>): RecipientDecision => ({
  userId: "@bob:hs",
  deviceId,
  dehydrated: false,
  decision: "share",
  rule: "shared",
  reason: "r",
  ...d,
});
const planOf = (...devices: RecipientDecision[]): RecipientPlan => ({
  roomId: "!r:hs",
  strategy: "all_devices",
  devices,
});

describe("appliedFromRequests", () => {
  it("reads shares from m.room.encrypted and codes from m.room_key.withheld, ignoring the rest", () => {
    const applied = appliedFromRequests([
      encrypted({ "@bob:hs": { A: { ciphertext: {} }, B: {} } }),
      withheld({ "@bob:hs": { C: { code: "m.unverified" } }, "@eve:hs": { X: { code: "m.no_olm" } } }),
      { event_type: "m.dummy", body: JSON.stringify({ messages: { "@bob:hs": { D: {} } } }) },
      { event_type: "m.room.encrypted", body: "not json" },
    ]);
    expect(applied).toEqual([
      { userId: "@bob:hs", deviceId: "A", outcome: "shared" },
      { userId: "@bob:hs", deviceId: "B", outcome: "shared" },
      { userId: "@bob:hs", deviceId: "C", outcome: "withheld", code: "m.unverified" },
      { userId: "@eve:hs", deviceId: "X", outcome: "withheld", code: "m.no_olm" },
    ]);
  });
});

describe("planDifferences", () => {
  const plan = planOf(
    decision("A", {}),
    decision("B", { decision: "withhold", code: "m.unverified", rule: "dehydrated_not_cross_signed" }),
    decision("C", { decision: "refuse", rule: "unsigned_device_of_verified_user" }),
  );

  it("agrees when outcomes match the prediction", () => {
    const applied = appliedFromRequests([
      encrypted({ "@bob:hs": { A: {} } }),
      withheld({ "@bob:hs": { B: { code: "m.unverified" } } }),
    ]);
    expect(planDifferences(plan, applied)).toEqual([]);
  });

  it("flags a key shared against the plan, to an unknown device, withheld otherwise, or under a refusal", () => {
    const applied = appliedFromRequests([
      encrypted({ "@bob:hs": { B: {}, C: {}, Z: {} } }),
      withheld({ "@bob:hs": { A: { code: "m.blacklisted" } } }),
    ]);
    expect(planDifferences(plan, applied)).toEqual([
      {
        userId: "@bob:hs",
        deviceId: "B",
        predicted: "withhold",
        predictedCode: "m.unverified",
        applied: "shared",
      },
      { userId: "@bob:hs", deviceId: "C", predicted: "refuse", applied: "shared" },
      { userId: "@bob:hs", deviceId: "Z", predicted: "absent", applied: "shared" },
      {
        userId: "@bob:hs",
        deviceId: "A",
        predicted: "share",
        applied: "withheld",
        appliedCode: "m.blacklisted",
      },
    ]);
  });

  it("flags a withheld code other than predicted", () => {
    const applied = appliedFromRequests([withheld({ "@bob:hs": { B: { code: "m.no_olm" } } })]);
    expect(planDifferences(plan, applied)).toHaveLength(1);
  });
});

describe("mergeApplied", () => {
  it("keeps earlier outcomes of the session, lets this send's win, and marks the rest unchanged", () => {
    const plan = planOf(decision("A", {}), decision("B", {}), decision("C", {}));
    const earlier = new Map([
      [deviceKey("@bob:hs", "A"), { userId: "@bob:hs", deviceId: "A", outcome: "shared" as const }],
    ]);
    const merged = mergeApplied(plan, earlier, [{ userId: "@bob:hs", deviceId: "B", outcome: "shared" }]);
    expect([...merged.values()]).toEqual([
      { userId: "@bob:hs", deviceId: "A", outcome: "shared" },
      { userId: "@bob:hs", deviceId: "B", outcome: "shared" },
      { userId: "@bob:hs", deviceId: "C", outcome: "unchanged" },
    ]);
    expect(earlier.size).toBe(1);
  });
});
