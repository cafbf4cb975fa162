/**
 * The recipient plan of a room key: for each device of each member, whether the key is shared or
 * withheld, with the `m.room_key.withheld` code and a reason a person can read. Plain data, so a UI
 * can show it and the client can cross a thread boundary.
 */

/**
 * How the crypto layer picks the devices a room key goes to (crypto-wasm's `CollectStrategy`).
 * Every strategy withholds from a dehydrated device its owner did not cross-sign (MSC3814,
 * "Security considerations"), except where a device was explicitly marked as ignored.
 */
export type SharingStrategy =
  /** Every device that is not blacklisted (matrix-js-sdk's default). */
  | "all_devices"
  /** As `all_devices`, but refuses to send while a verified user has an unsigned device or changed identity. */
  | "error_on_verified_user_problem"
  /** Only devices their owner cross-signed; refuses to send unless this device is itself verified. */
  | "identity_based"
  /** Only devices this user trusts: verified, marked trusted, or cross-signed by a verified owner. */
  | "only_trusted_devices";

export const SHARING_STRATEGIES: readonly SharingStrategy[] = [
  "all_devices",
  "error_on_verified_user_problem",
  "identity_based",
  "only_trusted_devices",
];

/** The codes of `m.room_key.withheld` (Client-Server spec, "Reporting that decryption keys are withheld"). */
export type WithheldCode = "m.blacklisted" | "m.unverified" | "m.no_olm" | "m.unauthorised" | "m.unavailable";

/** The device's local trust flag, as the app or a verification set it. */
export type LocalTrust = "unset" | "verified" | "blacklisted" | "ignored";

/** What the crypto layer knows of one device, as plain data. */
export interface DeviceFacts {
  userId: string;
  deviceId: string;
  displayName: string | undefined;
  /** The signed device keys carry `"dehydrated": true` (MSC3814). */
  dehydrated: boolean;
  localTrust: LocalTrust;
  /** Signed by its owner's self-signing key, as the owner's current identity publishes it. */
  crossSignedByOwner: boolean;
  /** Trusted through cross-signing: signed by its owner, and the owner is verified by us. */
  crossSigningTrusted: boolean;
  /**
   * Whether an Olm session can carry the key: `unavailable` once a claim found no one-time key for
   * it (the key is then withheld with `m.no_olm`); `unknown` before any claim was tried.
   */
  olmSession: "available" | "unavailable" | "unknown";
}

/** What the crypto layer knows of a user's cross-signing identity. */
export interface IdentityFacts {
  /** Verified by us (for our own identity: this device trusts its master key). */
  verified: boolean;
  /** Verified once and since replaced by an identity we have not verified. */
  wasPreviouslyVerified: boolean;
}

export interface UserFacts {
  userId: string;
  /** `undefined`: the user published no cross-signing identity. */
  identity: IdentityFacts | undefined;
  /** Every device but this one, deleted devices left out. */
  devices: DeviceFacts[];
}

export interface PolicyInput {
  roomId: string;
  strategy: SharingStrategy;
  /** This device's own identity; `undefined` when cross-signing is not set up. */
  ownIdentity: IdentityFacts | undefined;
  users: UserFacts[];
}

/** Why a device gets the key or not; one name per rule, stable for code. */
export type RecipientRule =
  | "shared"
  | "ignored_by_user"
  | "trusted"
  | "blacklisted"
  | "dehydrated_owner_has_no_identity"
  | "dehydrated_not_cross_signed"
  | "dehydrated_owner_identity_changed"
  | "owner_has_no_identity"
  | "not_cross_signed"
  | "not_trusted"
  | "no_olm_session"
  | "unsigned_device_of_verified_user"
  | "verified_user_changed_identity"
  | "own_identity_not_ready"
  | "trusted_unsigned_dehydrated_device";

export interface RecipientDecision {
  userId: string;
  deviceId: string;
  dehydrated: boolean;
  /**
   * `share`: the device gets the room key. `withhold`: it gets an `m.room_key.withheld` with `code`.
   * `refuse`: the strategy refuses to send at all because of this device (see `RecipientPlan.refusal`).
   */
  decision: "share" | "withhold" | "refuse";
  code?: WithheldCode;
  rule: RecipientRule;
  reason: string;
}

/** Why the strategy refuses to share the room key at all: nothing is sent until it is resolved. */
export interface PlanRefusal {
  code:
    | "cross_signing_not_set_up"
    | "sending_from_unverified_device"
    | "verified_user_changed_identity"
    | "verified_user_has_unsigned_device"
    | "trusted_unsigned_dehydrated_device";
  reason: string;
  /** The users the refusal names (none for a problem of our own identity). */
  userIds: string[];
}

export interface RecipientPlan {
  /** The room the plan is for: a plan checks a send to that room only. */
  roomId: string;
  strategy: SharingStrategy;
  devices: RecipientDecision[];
  refusal?: PlanRefusal;
}

const REASONS: Record<RecipientRule, string> = {
  shared: "an ordinary device of a room member",
  ignored_by_user: "marked as ignored, so its trust is not checked",
  trusted: "trusted by this user",
  blacklisted: "blacklisted by this user",
  dehydrated_owner_has_no_identity:
    "a dehydrated device of a user without a cross-signing identity: the server could have added it",
  dehydrated_not_cross_signed:
    "a dehydrated device its owner did not cross-sign: the server could have added it",
  dehydrated_owner_identity_changed:
    "a dehydrated device of a user whose verified identity changed: it is withheld until the new identity is verified",
  owner_has_no_identity: "its owner has no cross-signing identity",
  not_cross_signed: "not cross-signed by its owner",
  not_trusted: "not verified, and not cross-signed by a verified owner",
  no_olm_session: "no encrypted channel could be set up: the server had no one-time key for it",
  unsigned_device_of_verified_user:
    "a verified user's device that its owner did not cross-sign: verify or blacklist it to send",
  verified_user_changed_identity:
    "a verified user changed their identity: verify the new identity or withdraw the verification to send",
  own_identity_not_ready:
    "nothing is sent until this device's own cross-signing identity is set up and verified",
  trusted_unsigned_dehydrated_device:
    "a dehydrated device its owner did not cross-sign, marked ignored or verified here: this SDK never sends it a room key — remove the mark to send",
};

/**
 * Predicts what crypto-wasm's `shareRoomKey` does, rule for rule with matrix-sdk-crypto's
 * `share_strategy.rs` (the collect strategies), then withholds `m.no_olm` from a device that would
 * get the key but has no Olm session. Pure: the same facts give the same plan.
 */
export function planRecipients(input: PolicyInput): RecipientPlan {
  const { roomId, strategy, ownIdentity } = input;
  const devices: RecipientDecision[] = [];
  if (strategy === "identity_based" && !ownIdentity?.verified) {
    const code = ownIdentity ? "sending_from_unverified_device" : "cross_signing_not_set_up";
    const reason = ownIdentity
      ? "this device is not verified: the identity-based strategy sends only from a verified device"
      : "cross-signing is not set up: the identity-based strategy needs it";
    for (const user of input.users)
      for (const device of user.devices) devices.push(refuse(device, "own_identity_not_ready"));
    return { roomId, strategy, devices, refusal: { code, reason, userIds: [] } };
  }
  const changedIdentity: string[] = [];
  const unsignedOfVerified = new Set<string>();
  const trustedUnsignedDehydrated = new Set<string>();
  for (const user of input.users) {
    const violation = identityViolation(user.identity);
    if (violation && (strategy === "error_on_verified_user_problem" || strategy === "identity_based")) {
      changedIdentity.push(user.userId);
      for (const device of user.devices) devices.push(refuse(device, "verified_user_changed_identity"));
      continue;
    }
    for (const device of user.devices) {
      let decision = decideForStrategy(strategy, device, user.identity);
      if (decision.decision === "refuse") unsignedOfVerified.add(user.userId);
      // The strategies let a locally ignored or verified device through whatever it is. A
      // dehydrated device its owner did not cross-sign is what a server injects to collect keys
      // (MSC3814, "Security considerations"): no local mark makes this SDK send it one.
      if (
        decision.decision === "share" &&
        device.dehydrated &&
        !(user.identity && device.crossSignedByOwner)
      ) {
        decision = refuse(device, "trusted_unsigned_dehydrated_device");
        trustedUnsignedDehydrated.add(user.userId);
      }
      devices.push(decision);
    }
  }
  // matrix-sdk-crypto reports unsigned devices of verified users before changed identities.
  const refusal: PlanRefusal | undefined =
    trustedUnsignedDehydrated.size > 0
      ? {
          code: "trusted_unsigned_dehydrated_device",
          reason: REASONS.trusted_unsigned_dehydrated_device,
          userIds: [...trustedUnsignedDehydrated],
        }
      : unsignedOfVerified.size > 0
        ? {
            code: "verified_user_has_unsigned_device",
            reason: REASONS.unsigned_device_of_verified_user,
            userIds: [...unsignedOfVerified],
          }
        : changedIdentity.length > 0
          ? {
              code: "verified_user_changed_identity",
              reason: REASONS.verified_user_changed_identity,
              userIds: changedIdentity,
            }
          : undefined;
  return refusal ? { roomId, strategy, devices, refusal } : { roomId, strategy, devices };
}

/** A user we verified whose identity is no longer the verified one. */
function identityViolation(identity: IdentityFacts | undefined): boolean {
  return identity?.wasPreviouslyVerified === true && !identity.verified;
}

function decideForStrategy(
  strategy: SharingStrategy,
  device: DeviceFacts,
  owner: IdentityFacts | undefined,
): RecipientDecision {
  switch (strategy) {
    case "all_devices":
      if (device.localTrust === "blacklisted") return decide(device, "blacklisted");
      if (device.dehydrated) {
        if (owner === undefined) return decide(device, "dehydrated_owner_has_no_identity");
        if (!device.crossSignedByOwner) return decide(device, "dehydrated_not_cross_signed");
        if (identityViolation(owner)) return decide(device, "dehydrated_owner_identity_changed");
      }
      return decide(device, "shared");
    case "error_on_verified_user_problem":
      if (device.localTrust === "blacklisted") return decide(device, "blacklisted");
      if (device.localTrust === "ignored") return decide(device, "ignored_by_user");
      if (owner?.verified && !device.crossSignedByOwner)
        return refuse(device, "unsigned_device_of_verified_user");
      if (device.dehydrated) {
        if (owner === undefined) return decide(device, "dehydrated_owner_has_no_identity");
        if (!device.crossSignedByOwner) return decide(device, "dehydrated_not_cross_signed");
      }
      return decide(device, "shared");
    case "identity_based":
      if (owner === undefined) return decide(device, "owner_has_no_identity");
      if (!device.crossSignedByOwner) return decide(device, "not_cross_signed");
      return decide(device, "shared");
    case "only_trusted_devices":
      if (device.localTrust === "blacklisted") return decide(device, "blacklisted");
      if (device.localTrust === "verified" || device.localTrust === "ignored")
        return decide(device, "trusted");
      if (device.crossSigningTrusted) return decide(device, "trusted");
      return decide(device, "not_trusted");
  }
}

const WITHHELD_BY_RULE: Partial<Record<RecipientRule, WithheldCode>> = {
  blacklisted: "m.blacklisted",
  dehydrated_owner_has_no_identity: "m.unverified",
  dehydrated_not_cross_signed: "m.unverified",
  dehydrated_owner_identity_changed: "m.unverified",
  owner_has_no_identity: "m.unverified",
  not_cross_signed: "m.unverified",
  not_trusted: "m.unverified",
  no_olm_session: "m.no_olm",
};

/** One device's decision; a device the strategy lets through still needs an Olm session. */
function decide(device: DeviceFacts, rule: RecipientRule): RecipientDecision {
  const base = { userId: device.userId, deviceId: device.deviceId, dehydrated: device.dehydrated };
  const code = WITHHELD_BY_RULE[rule];
  if (code !== undefined) return { ...base, decision: "withhold", code, rule, reason: REASONS[rule] };
  if (device.olmSession === "unavailable") {
    return {
      ...base,
      decision: "withhold",
      code: "m.no_olm",
      rule: "no_olm_session",
      reason: REASONS.no_olm_session,
    };
  }
  return { ...base, decision: "share", rule, reason: REASONS[rule] };
}

function refuse(
  device: DeviceFacts,
  rule:
    | "unsigned_device_of_verified_user"
    | "verified_user_changed_identity"
    | "own_identity_not_ready"
    | "trusted_unsigned_dehydrated_device",
): RecipientDecision {
  return {
    userId: device.userId,
    deviceId: device.deviceId,
    dehydrated: device.dehydrated,
    decision: "refuse",
    rule,
    reason: REASONS[rule],
  };
}
