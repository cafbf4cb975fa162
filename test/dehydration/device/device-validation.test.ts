import { describe, expect, it } from "vitest";
import {
  type DehydratedDeviceFacts,
  type DehydratedDeviceRejection,
  deviceRejectedError,
  validateDehydratedDevice,
} from "../../../src/dehydration/device/device-validation.js";
import { isDehydrationError } from "../../../src/dehydration/device/errors.js";

const ID = "U5XZNLnfV6+Se/0AvsrqiQceuJimnHuzFF4Dphv7/n8";

/** A device that passes every rule; each case below breaks some. */
const good: DehydratedDeviceFacts = {
  deviceId: ID,
  listed: true,
  flaggedDehydrated: true,
  curve25519Key: ID,
  crossSignedByOwner: true,
  ownIdentityTrusted: true,
};

describe("validateDehydratedDevice", () => {
  it("accepts a listed, flagged device named after its key and signed by our trusted identity", () => {
    expect(validateDehydratedDevice(good)).toEqual({ ok: true });
  });

  const cases: [string, Partial<DehydratedDeviceFacts>, DehydratedDeviceRejection[]][] = [
    ["is missing from our own keys/query", { listed: false }, ["not_in_device_list"]],
    ["lacks the signed dehydrated flag", { flaggedDehydrated: false }, ["not_flagged_dehydrated"]],
    ["has an id that is not its Curve25519 key", { curve25519Key: "AAAA" }, ["id_not_curve25519_key"]],
    ["has no Curve25519 key at all", { curve25519Key: undefined }, ["id_not_curve25519_key"]],
    [
      "is unsigned or signed by another identity",
      { crossSignedByOwner: false },
      ["not_cross_signed_by_owner"],
    ],
    [
      "is vouched for by an identity this device does not trust",
      { ownIdentityTrusted: false },
      ["own_identity_not_trusted"],
    ],
    [
      "is an ordinary device of ours claimed as the dehydrated one",
      { flaggedDehydrated: false, curve25519Key: "somethingelse" },
      ["not_flagged_dehydrated", "id_not_curve25519_key"],
    ],
    [
      "is unknown and our identity is untrusted",
      { listed: false, ownIdentityTrusted: false },
      ["not_in_device_list", "own_identity_not_trusted"],
    ],
  ];

  it.each(cases)("refuses a device that %s", (_what, change, reasons) => {
    expect(validateDehydratedDevice({ ...good, ...change })).toEqual({ ok: false, reasons });
  });

  it("reports only the missing listing for an unlisted device, whatever else is claimed", () => {
    const verdict = validateDehydratedDevice({
      ...good,
      listed: false,
      flaggedDehydrated: false,
      crossSignedByOwner: false,
      curve25519Key: undefined,
    });
    expect(verdict).toEqual({ ok: false, reasons: ["not_in_device_list"] });
  });
});

describe("deviceRejectedError", () => {
  it("is a typed error that warns of an injecting server and says the device was kept", () => {
    const error = deviceRejectedError(ID, ["not_cross_signed_by_owner"]);
    expect(isDehydrationError(error)).toBe(true);
    expect(error.code).toBe("device_rejected");
    expect(error.message).toMatch(/may be injecting a device/);
    expect(error.message).toMatch(/left in place/);
    expect(error.details).toEqual({ deviceId: ID, reasons: ["not_cross_signed_by_owner"] });
  });
});
