import { describe, expect, it } from "vitest";
import {
  type DecryptOutcome,
  detectPositionLost,
  detectQueryFailures,
  detectReport,
  detectUnknownSender,
  detectUnsignedDevices,
  type ListedDevice,
  type SenderObservation,
  type SigningSnapshot,
  senderOfRoomEvent,
  sendersOfToDevice,
  wantsServerRefresh,
} from "../../src/device-lists/detectors.js";
import { EvidenceMemo, MAX_CLAIMS_PER_USER } from "../../src/device-lists/evidence-memo.js";
import type { DeviceListStaleReason } from "../../src/device-lists/trust.js";

/**
 * Each staleness detector is a pure function of what was observed and of the evidence already
 * acted on: a table per detector, the memo included, so that the same evidence never fires twice.
 */

const DAVE = "@dave:remote.example";
const LISTED: ListedDevice[] = [
  { deviceId: "DAVE1", curve25519Key: "curveA" },
  { deviceId: "DAVE2", curve25519Key: "curveB" },
];

describe("(a) detectUnknownSender", () => {
  const cases: {
    name: string;
    observation: SenderObservation;
    seen?: string[];
    reasons: DeviceListStaleReason[];
    evidence: string[];
  }[] = [
    {
      name: "a listed device id and key: nothing",
      observation: { userId: DAVE, source: "to_device", deviceId: "DAVE1", senderKey: "curveA" },
      reasons: [],
      evidence: [],
    },
    {
      name: "an unknown device id",
      observation: { userId: DAVE, source: "room_event", deviceId: "DAVE3" },
      reasons: [{ kind: "unknown_device", source: "room_event", deviceId: "DAVE3" }],
      evidence: ["device:DAVE3"],
    },
    {
      name: "an unknown sender key with no device id (m.room_key)",
      observation: { userId: DAVE, source: "to_device", senderKey: "curveZ" },
      reasons: [{ kind: "unknown_device", source: "to_device", senderKey: "curveZ" }],
      evidence: ["key:curveZ"],
    },
    {
      name: "a listed id with a key the list does not hold",
      observation: { userId: DAVE, source: "to_device", deviceId: "DAVE1", senderKey: "curveZ" },
      reasons: [{ kind: "unknown_device", source: "to_device", senderKey: "curveZ" }],
      evidence: ["key:curveZ"],
    },
    {
      name: "both unknown",
      observation: { userId: DAVE, source: "room_event", deviceId: "DAVE3", senderKey: "curveZ" },
      reasons: [{ kind: "unknown_device", source: "room_event", deviceId: "DAVE3", senderKey: "curveZ" }],
      evidence: ["device:DAVE3", "key:curveZ"],
    },
    {
      name: "evidence already acted on does not fire again",
      observation: { userId: DAVE, source: "room_event", deviceId: "DAVE3", senderKey: "curveZ" },
      seen: ["device:DAVE3", "key:curveZ"],
      reasons: [],
      evidence: [],
    },
    {
      name: "half of it new fires",
      observation: { userId: DAVE, source: "room_event", deviceId: "DAVE3", senderKey: "curveY" },
      seen: ["device:DAVE3", "key:curveZ"],
      reasons: [{ kind: "unknown_device", source: "room_event", deviceId: "DAVE3", senderKey: "curveY" }],
      evidence: ["device:DAVE3", "key:curveY"],
    },
    {
      name: "no claim at all: nothing",
      observation: { userId: DAVE, source: "to_device" },
      reasons: [],
      evidence: [],
    },
  ];
  it.each(cases)("$name", ({ observation, seen, reasons, evidence }) => {
    expect(detectUnknownSender(observation, LISTED, new Set(seen))).toEqual({ reasons, evidence });
  });

  it("an empty list makes every claim unknown", () => {
    expect(
      detectUnknownSender({ userId: DAVE, source: "to_device", deviceId: "X" }, [], new Set()).reasons,
    ).toHaveLength(1);
  });
});

describe("(a) the senders decrypts point at", () => {
  const event = {
    sender: DAVE,
    content: { algorithm: "m.megolm.v1.aes-sha2", device_id: "DAVE3", sender_key: "curveZ" },
  };
  const cases: {
    name: string;
    event: unknown;
    outcome: DecryptOutcome;
    expected: SenderObservation | undefined;
  }[] = [
    {
      name: "decrypted from a known device: none",
      event,
      outcome: {
        ok: true,
        sender: { userId: DAVE, deviceId: "DAVE1", curve25519Key: "curveA", trust: "unverified" },
      },
      expected: undefined,
    },
    {
      name: "decrypted from an unknown device: the session's key, the claimed device id",
      event,
      outcome: {
        ok: true,
        sender: { userId: DAVE, deviceId: undefined, curve25519Key: "curveZ", trust: "unknown_device" },
      },
      expected: { userId: DAVE, source: "room_event", deviceId: "DAVE3", senderKey: "curveZ" },
    },
    {
      name: "a key of unproven origin (backup, forward): none",
      event,
      outcome: {
        ok: true,
        sender: {
          userId: DAVE,
          deviceId: undefined,
          curve25519Key: "curveZ",
          trust: "authenticity_not_guaranteed",
        },
      },
      expected: undefined,
    },
    {
      name: "refused as from an unknown device: the event's claims",
      event,
      outcome: { ok: false, reason: "unknown_sender_device" },
      expected: { userId: DAVE, source: "room_event", deviceId: "DAVE3", senderKey: "curveZ" },
    },
    {
      name: "refused for another reason: none",
      event,
      outcome: { ok: false, reason: "missing_room_key" },
      expected: undefined,
    },
    {
      name: "refused, and the event claims nothing: none",
      event: { sender: DAVE, content: {} },
      outcome: { ok: false, reason: "unknown_sender_device" },
      expected: undefined,
    },
    {
      name: "a late key's result, without the event",
      event: undefined,
      outcome: {
        ok: true,
        sender: { userId: DAVE, deviceId: undefined, curve25519Key: "curveZ", trust: "unknown_device" },
      },
      expected: { userId: DAVE, source: "room_event", deviceId: undefined, senderKey: "curveZ" },
    },
  ];
  it.each(cases)("$name", ({ event, outcome, expected }) => {
    expect(senderOfRoomEvent(event, outcome)).toEqual(expected);
  });

  it("takes the senders of decrypted to-device events only", () => {
    expect(
      sendersOfToDevice([
        { kind: "decrypted", sender: { userId: DAVE, deviceId: undefined, curve25519Key: "curveZ" } },
        { kind: "decrypted", sender: { userId: DAVE, deviceId: "DAVE1", curve25519Key: "curveA" } },
        { kind: "plaintext" },
        { kind: "unable_to_decrypt" },
        { kind: "decrypted" },
      ]),
    ).toEqual([
      { userId: DAVE, source: "to_device", deviceId: undefined, senderKey: "curveZ" },
      { userId: DAVE, source: "to_device", deviceId: "DAVE1", senderKey: "curveA" },
    ]);
  });
});

describe("(b) detectUnsignedDevices", () => {
  const signed = { deviceId: "S1", crossSignedByOwner: true };
  const old = { deviceId: "OLD", crossSignedByOwner: false };
  const fresh = { deviceId: "NEW", crossSignedByOwner: false };
  const cases: {
    name: string;
    snapshot: SigningSnapshot;
    seen?: string[];
    reasons: DeviceListStaleReason[];
    evidence: string[];
  }[] = [
    {
      name: "no cross-signing keys: unsigned devices are normal",
      snapshot: { hasCrossSigningKeys: false, devices: [old] },
      reasons: [],
      evidence: [],
    },
    {
      name: "every device signed: nothing",
      snapshot: { hasCrossSigningKeys: true, devices: [signed] },
      reasons: [],
      evidence: [],
    },
    {
      name: "an unsigned device fires",
      snapshot: { hasCrossSigningKeys: true, devices: [signed, old] },
      reasons: [{ kind: "unsigned_devices", deviceIds: ["OLD"] }],
      evidence: ["unsigned:OLD"],
    },
    {
      name: "the same unsigned set never fires again (no resync storm for a legit old device)",
      snapshot: { hasCrossSigningKeys: true, devices: [signed, old] },
      seen: ["unsigned:OLD"],
      reasons: [],
      evidence: [],
    },
    {
      name: "a new unsigned device beside the old one fires, naming both",
      snapshot: { hasCrossSigningKeys: true, devices: [fresh, old, signed] },
      seen: ["unsigned:OLD"],
      reasons: [{ kind: "unsigned_devices", deviceIds: ["NEW", "OLD"] }],
      evidence: ["unsigned:NEW", "unsigned:OLD"],
    },
    {
      name: "a smaller set than before does not fire",
      snapshot: { hasCrossSigningKeys: true, devices: [old] },
      seen: ["unsigned:NEW", "unsigned:OLD"],
      reasons: [],
      evidence: [],
    },
  ];
  it.each(cases)("$name", ({ snapshot, seen, reasons, evidence }) => {
    expect(detectUnsignedDevices(snapshot, new Set(seen))).toEqual({ reasons, evidence });
  });
});

describe("EvidenceMemo", () => {
  it("remembers a whole unsigned set however large: it fires once, then never for the same set", () => {
    const memo = new EvidenceMemo();
    const devices = Array.from({ length: 1_000 }, (_, i) => ({
      deviceId: `D${i}`,
      crossSignedByOwner: false,
    }));
    const snapshot: SigningSnapshot = { hasCrossSigningKeys: true, devices };
    const first = detectUnsignedDevices(snapshot, memo.seen(DAVE));
    expect(first.evidence).toHaveLength(1_000);
    memo.record(DAVE, first.evidence);
    expect(detectUnsignedDevices(snapshot, memo.seen(DAVE)).reasons).toEqual([]);
  });

  it("keeps only the latest unsigned set: what it holds never outgrows the user's list", () => {
    const memo = new EvidenceMemo();
    memo.record(DAVE, ["unsigned:OLD", "unsigned:GONE"]);
    memo.record(DAVE, ["unsigned:OLD", "unsigned:NEW"]);
    expect(["unsigned:OLD", "unsigned:NEW", "unsigned:GONE"].map((k) => memo.seen(DAVE).has(k))).toEqual([
      true,
      true,
      false,
    ]);
  });

  it("keeps the newest unknown-device claims per user, and users apart; forget drops a user", () => {
    const memo = new EvidenceMemo();
    const claims = Array.from({ length: MAX_CLAIMS_PER_USER + 1 }, (_, i) => `key:k${i}`);
    for (const claim of claims) memo.record(DAVE, [claim]);
    memo.record(DAVE, ["unsigned:OLD"]);
    expect(memo.seen(DAVE).has("key:k0")).toBe(false);
    expect(claims.slice(1).every((c) => memo.seen(DAVE).has(c))).toBe(true);
    expect(memo.seen(DAVE).has("unsigned:OLD")).toBe(true);
    expect(memo.seen("@bob:home.example").has("key:k1")).toBe(false);
    memo.forget(DAVE);
    expect(memo.seen(DAVE).has("key:k1")).toBe(false);
    expect(memo.size).toBe(0);
  });
});

describe("(c) detectQueryFailures", () => {
  const cases: { name: string; users: string[]; failed: string[]; expected: [string, string][] }[] = [
    { name: "no failures", users: [DAVE, "@bob:home.example"], failed: [], expected: [] },
    {
      name: "the users of the failed server",
      users: [DAVE, "@erin:remote.example", "@bob:home.example"],
      failed: ["remote.example"],
      expected: [
        [DAVE, "remote.example"],
        ["@erin:remote.example", "remote.example"],
      ],
    },
    {
      name: "a server with a port is its own server",
      users: ["@fay:remote.example:8448", DAVE],
      failed: ["remote.example:8448"],
      expected: [["@fay:remote.example:8448", "remote.example:8448"]],
    },
    {
      name: "a failure naming none of the users",
      users: [DAVE],
      failed: ["elsewhere.example"],
      expected: [],
    },
  ];
  it.each(cases)("$name", ({ users, failed, expected }) => {
    const found = detectQueryFailures(users, failed);
    expect([...found].map(([u, r]) => [u, r.server])).toEqual(expected);
    for (const reason of found.values()) expect(reason.kind).toBe("key_query_failed");
  });
});

describe("(d) detectPositionLost and (e) detectReport", () => {
  it("marks every tracked user, and only them", () => {
    expect([...detectPositionLost([DAVE, "@bob:home.example"])]).toEqual([
      [DAVE, { kind: "position_lost" }],
      ["@bob:home.example", { kind: "position_lost" }],
    ]);
    expect(detectPositionLost([]).size).toBe(0);
  });

  it.each([
    [undefined, { kind: "reported" }],
    ["", { kind: "reported" }],
    ["they say they have a laptop", { kind: "reported", note: "they say they have a laptop" }],
    ["x".repeat(500), { kind: "reported", note: "x".repeat(200) }],
    // Cut by code points: an emoji across the cut stays whole, never half a surrogate pair.
    [`${"x".repeat(199)}🙂🙂`, { kind: "reported", note: `${"x".repeat(199)}🙂` }],
    ["🙂".repeat(300), { kind: "reported", note: "🙂".repeat(200) }],
  ])("a report with note %j", (note, expected) => {
    expect(detectReport(note)).toEqual(expected);
  });
});

describe("wantsServerRefresh", () => {
  it.each<[DeviceListStaleReason[], boolean]>([
    [[{ kind: "position_lost" }], false],
    [[{ kind: "position_lost" }, { kind: "reported" }], true],
    [[{ kind: "unsigned_devices", deviceIds: ["A"] }], true],
    [[{ kind: "key_query_failed", server: "remote.example" }], true],
    [[{ kind: "requested" }], true],
    [[], false],
  ])("%j → %s", (reasons, expected) => {
    expect(wantsServerRefresh(reasons)).toBe(expected);
  });
});
