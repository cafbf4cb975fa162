import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type DeviceFacts,
  type IdentityFacts,
  type PolicyInput,
  planRecipients,
  type RecipientDecision,
  SHARING_STRATEGIES,
  type SharingStrategy,
} from "../../src/rooms/recipient-plan.js";

const device = (overrides: Partial<DeviceFacts> = {}): DeviceFacts => ({
  userId: "@bob:hs",
  deviceId: "D",
  displayName: undefined,
  dehydrated: false,
  localTrust: "unset",
  crossSignedByOwner: true,
  crossSigningTrusted: false,
  olmSession: "available",
  ...overrides,
});
const verified: IdentityFacts = { verified: true, wasPreviouslyVerified: true };
const unverified: IdentityFacts = { verified: false, wasPreviouslyVerified: false };
const changed: IdentityFacts = { verified: false, wasPreviouslyVerified: true };

const plan = (
  strategy: SharingStrategy,
  d: DeviceFacts,
  owner: IdentityFacts | undefined,
  /** `null`: this device has no cross-signing identity. */
  ownIdentity: IdentityFacts | null = verified,
) =>
  planRecipients({
    roomId: "!r:hs",
    strategy,
    ownIdentity: ownIdentity ?? undefined,
    users: [{ userId: d.userId, identity: owner, devices: [d] }],
  });

type Expect = Pick<RecipientDecision, "decision" | "rule"> & { code?: string };

/**
 * One row per rule and strategy, after matrix-sdk-crypto's `share_strategy.rs`
 * (`withheld_code_for_device_for_*`, `handle_device_for_user_for_error_on_verified_user_problem_strategy`).
 */
const rows: [string, SharingStrategy, DeviceFacts, IdentityFacts | undefined, Expect][] = [
  // all_devices
  [
    "ordinary device",
    "all_devices",
    device({ crossSignedByOwner: false }),
    unverified,
    { decision: "share", rule: "shared" },
  ],
  [
    "blacklisted",
    "all_devices",
    device({ localTrust: "blacklisted" }),
    unverified,
    { decision: "withhold", rule: "blacklisted", code: "m.blacklisted" },
  ],
  [
    "dehydrated, owner without identity",
    "all_devices",
    device({ dehydrated: true, crossSignedByOwner: false }),
    undefined,
    { decision: "withhold", rule: "dehydrated_owner_has_no_identity", code: "m.unverified" },
  ],
  [
    "dehydrated, not cross-signed",
    "all_devices",
    device({ dehydrated: true, crossSignedByOwner: false }),
    unverified,
    { decision: "withhold", rule: "dehydrated_not_cross_signed", code: "m.unverified" },
  ],
  [
    "dehydrated, verified owner changed identity",
    "all_devices",
    device({ dehydrated: true }),
    changed,
    { decision: "withhold", rule: "dehydrated_owner_identity_changed", code: "m.unverified" },
  ],
  [
    "dehydrated, cross-signed",
    "all_devices",
    device({ dehydrated: true }),
    unverified,
    { decision: "share", rule: "shared" },
  ],
  [
    "dehydrated, cross-signed by a verified owner",
    "all_devices",
    device({ dehydrated: true }),
    verified,
    { decision: "share", rule: "shared" },
  ],
  [
    "no Olm session",
    "all_devices",
    device({ olmSession: "unavailable" }),
    unverified,
    { decision: "withhold", rule: "no_olm_session", code: "m.no_olm" },
  ],
  [
    "blacklisted beats no Olm session",
    "all_devices",
    device({ localTrust: "blacklisted", olmSession: "unavailable" }),
    unverified,
    { decision: "withhold", rule: "blacklisted", code: "m.blacklisted" },
  ],
  [
    "verified owner changed identity, ordinary device",
    "all_devices",
    device(),
    changed,
    { decision: "share", rule: "shared" },
  ],
  // error_on_verified_user_problem
  [
    "ordinary device of an unverified user",
    "error_on_verified_user_problem",
    device({ crossSignedByOwner: false }),
    unverified,
    { decision: "share", rule: "shared" },
  ],
  [
    "blacklisted",
    "error_on_verified_user_problem",
    device({ localTrust: "blacklisted" }),
    verified,
    { decision: "withhold", rule: "blacklisted", code: "m.blacklisted" },
  ],
  [
    "ignored, ordinary and unsigned",
    "error_on_verified_user_problem",
    device({ localTrust: "ignored", crossSignedByOwner: false }),
    verified,
    { decision: "share", rule: "ignored_by_user" },
  ],
  [
    "ignored, dehydrated and unsigned: crypto-wasm would share, the SDK refuses",
    "error_on_verified_user_problem",
    device({ localTrust: "ignored", dehydrated: true, crossSignedByOwner: false }),
    verified,
    { decision: "refuse", rule: "trusted_unsigned_dehydrated_device" },
  ],
  [
    "locally verified, dehydrated and unsigned: crypto-wasm would share, the SDK refuses",
    "only_trusted_devices",
    device({ localTrust: "verified", dehydrated: true, crossSignedByOwner: false }),
    unverified,
    { decision: "refuse", rule: "trusted_unsigned_dehydrated_device" },
  ],
  [
    "unsigned device of a verified user",
    "error_on_verified_user_problem",
    device({ crossSignedByOwner: false }),
    verified,
    { decision: "refuse", rule: "unsigned_device_of_verified_user" },
  ],
  [
    "unsigned dehydrated device of a verified user",
    "error_on_verified_user_problem",
    device({ dehydrated: true, crossSignedByOwner: false }),
    verified,
    { decision: "refuse", rule: "unsigned_device_of_verified_user" },
  ],
  [
    "dehydrated, not cross-signed, unverified owner",
    "error_on_verified_user_problem",
    device({ dehydrated: true, crossSignedByOwner: false }),
    unverified,
    { decision: "withhold", rule: "dehydrated_not_cross_signed", code: "m.unverified" },
  ],
  [
    "dehydrated, owner without identity",
    "error_on_verified_user_problem",
    device({ dehydrated: true, crossSignedByOwner: false }),
    undefined,
    { decision: "withhold", rule: "dehydrated_owner_has_no_identity", code: "m.unverified" },
  ],
  [
    "verified user changed identity",
    "error_on_verified_user_problem",
    device(),
    changed,
    { decision: "refuse", rule: "verified_user_changed_identity" },
  ],
  [
    "no Olm session",
    "error_on_verified_user_problem",
    device({ olmSession: "unavailable" }),
    verified,
    { decision: "withhold", rule: "no_olm_session", code: "m.no_olm" },
  ],
  // identity_based
  ["cross-signed device", "identity_based", device(), unverified, { decision: "share", rule: "shared" }],
  [
    "not cross-signed",
    "identity_based",
    device({ crossSignedByOwner: false }),
    unverified,
    { decision: "withhold", rule: "not_cross_signed", code: "m.unverified" },
  ],
  [
    "owner without identity",
    "identity_based",
    device({ crossSignedByOwner: false }),
    undefined,
    { decision: "withhold", rule: "owner_has_no_identity", code: "m.unverified" },
  ],
  [
    "dehydrated, not cross-signed",
    "identity_based",
    device({ dehydrated: true, crossSignedByOwner: false }),
    unverified,
    { decision: "withhold", rule: "not_cross_signed", code: "m.unverified" },
  ],
  [
    "blacklisted but cross-signed (no blacklist rule in this strategy)",
    "identity_based",
    device({ localTrust: "blacklisted" }),
    unverified,
    { decision: "share", rule: "shared" },
  ],
  [
    "verified user changed identity",
    "identity_based",
    device(),
    changed,
    { decision: "refuse", rule: "verified_user_changed_identity" },
  ],
  // only_trusted_devices
  [
    "untrusted device",
    "only_trusted_devices",
    device(),
    unverified,
    { decision: "withhold", rule: "not_trusted", code: "m.unverified" },
  ],
  [
    "cross-signing trusted",
    "only_trusted_devices",
    device({ crossSigningTrusted: true }),
    verified,
    { decision: "share", rule: "trusted" },
  ],
  [
    "locally verified",
    "only_trusted_devices",
    device({ localTrust: "verified", crossSignedByOwner: false }),
    undefined,
    { decision: "share", rule: "trusted" },
  ],
  [
    "ignored",
    "only_trusted_devices",
    device({ localTrust: "ignored" }),
    undefined,
    { decision: "share", rule: "trusted" },
  ],
  [
    "blacklisted",
    "only_trusted_devices",
    device({ localTrust: "blacklisted", crossSigningTrusted: true }),
    verified,
    { decision: "withhold", rule: "blacklisted", code: "m.blacklisted" },
  ],
  [
    "dehydrated and untrusted",
    "only_trusted_devices",
    device({ dehydrated: true, crossSignedByOwner: false }),
    unverified,
    { decision: "withhold", rule: "not_trusted", code: "m.unverified" },
  ],
  [
    "trusted but no Olm session",
    "only_trusted_devices",
    device({ crossSigningTrusted: true, olmSession: "unavailable" }),
    verified,
    { decision: "withhold", rule: "no_olm_session", code: "m.no_olm" },
  ],
];

describe("planRecipients: one rule per row", () => {
  it.each(rows)("%s (%s)", (_name, strategy, d, owner, want) => {
    const [decision] = plan(strategy, d, owner).devices;
    expect(decision).toMatchObject({
      userId: d.userId,
      deviceId: d.deviceId,
      dehydrated: d.dehydrated,
      ...want,
    });
    if (want.code === undefined) expect(decision?.code).toBeUndefined();
    expect(decision?.reason.length).toBeGreaterThan(10);
  });
});

describe("planRecipients: refusals the plan says up front", () => {
  it("identity_based refuses without our own cross-signing, and from an unverified device", () => {
    const d = device();
    expect(plan("identity_based", d, verified, null).refusal).toMatchObject({
      code: "cross_signing_not_set_up",
      userIds: [],
    });
    const unverifiedOwn = plan("identity_based", d, verified, unverified);
    expect(unverifiedOwn.refusal?.code).toBe("sending_from_unverified_device");
    expect(unverifiedOwn.devices.every((x) => x.decision === "refuse")).toBe(true);
  });

  it("error_on_verified_user_problem names the users with an unsigned device or a changed identity", () => {
    const input: PolicyInput = {
      roomId: "!r:hs",
      strategy: "error_on_verified_user_problem",
      ownIdentity: verified,
      users: [
        { userId: "@bob:hs", identity: verified, devices: [device({ crossSignedByOwner: false })] },
        { userId: "@carol:hs", identity: changed, devices: [device({ userId: "@carol:hs" })] },
        { userId: "@dan:hs", identity: unverified, devices: [device({ userId: "@dan:hs" })] },
      ],
    };
    const result = planRecipients(input);
    expect(result.refusal).toMatchObject({ code: "verified_user_has_unsigned_device", userIds: ["@bob:hs"] });
    const onlyChanged = planRecipients({ ...input, users: input.users.slice(1) });
    expect(onlyChanged.refusal).toMatchObject({
      code: "verified_user_changed_identity",
      userIds: ["@carol:hs"],
    });
    expect(onlyChanged.devices.find((x) => x.userId === "@dan:hs")?.decision).toBe("share");
  });

  it("no other strategy refuses for another user's identity", () => {
    for (const strategy of ["all_devices", "only_trusted_devices"] as const) {
      expect(plan(strategy, device({ crossSignedByOwner: false }), changed).refusal).toBeUndefined();
    }
  });
});

describe("planRecipients: invariants", () => {
  const facts = fc
    .record({
      userId: fc.constantFrom("@a:hs", "@b:hs"),
      deviceId: fc.string({ minLength: 1, maxLength: 4 }),
      displayName: fc.constant(undefined),
      dehydrated: fc.boolean(),
      localTrust: fc.constantFrom("unset", "verified", "blacklisted", "ignored"),
      crossSignedByOwner: fc.boolean(),
      crossSigningTrusted: fc.boolean(),
      olmSession: fc.constantFrom("available", "unavailable", "unknown"),
    })
    // Cross-signing trust implies the owner's signature.
    .map((d) => ({
      ...d,
      crossSigningTrusted: d.crossSigningTrusted && d.crossSignedByOwner,
    })) as fc.Arbitrary<DeviceFacts>;
  const identity = fc.option(fc.record({ verified: fc.boolean(), wasPreviouslyVerified: fc.boolean() }), {
    nil: undefined,
  });

  it("never shares with a dehydrated device its owner did not cross-sign, whatever the local marks", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SHARING_STRATEGIES),
        facts,
        identity,
        identity,
        (strategy, generated, owner, own) => {
          // Without an owner identity nothing is cross-signed.
          const d = owner
            ? generated
            : { ...generated, crossSignedByOwner: false, crossSigningTrusted: false };
          const [decision] = plan(strategy, d, owner, own ?? null).devices;
          const unsigned = d.dehydrated && (owner === undefined || !d.crossSignedByOwner);
          if (unsigned) expect(decision?.decision).not.toBe("share");
        },
      ),
    );
  });

  it("gives every device exactly one decision, and a code exactly when withheld", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SHARING_STRATEGIES),
        fc.array(facts, { maxLength: 6 }),
        identity,
        (strategy, ds, owner) => {
          const result = planRecipients({
            roomId: "!r:hs",
            strategy,
            ownIdentity: verified,
            users: [{ userId: "@a:hs", identity: owner, devices: ds }],
          });
          expect(result.devices).toHaveLength(ds.length);
          for (const x of result.devices) expect(x.code !== undefined).toBe(x.decision === "withhold");
          if (result.devices.some((x) => x.decision === "refuse")) expect(result.refusal).toBeDefined();
        },
      ),
    );
  });
});
