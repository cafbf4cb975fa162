import { describe, expect, it } from "vitest";
import { encryptionTargets, roomEncryptionFrom } from "../../src/rooms/room-encryption.js";

const megolm = { algorithm: "m.megolm.v1.aes-sha2" };

describe("roomEncryptionFrom", () => {
  it("reads the rotation settings and the history visibility", () => {
    expect(
      roomEncryptionFrom(
        "!r:hs",
        { ...megolm, rotation_period_ms: 3_600_000, rotation_period_msgs: 10 },
        { history_visibility: "joined" },
      ),
    ).toEqual({
      algorithm: "m.megolm.v1.aes-sha2",
      rotationPeriodMs: 3_600_000,
      rotationPeriodMessages: 10,
      historyVisibility: "joined",
    });
  });

  it("uses the spec's defaults for absent or unusable values", () => {
    expect(
      roomEncryptionFrom("!r:hs", { ...megolm, rotation_period_ms: -1, rotation_period_msgs: "x" }, null),
    ).toMatchObject({
      rotationPeriodMs: 604_800_000,
      rotationPeriodMessages: 100,
      historyVisibility: "shared",
    });
    expect(roomEncryptionFrom("!r:hs", megolm, { history_visibility: "martian" }).historyVisibility).toBe(
      "shared",
    );
  });

  it.each([
    ["no encryption state", null, "room_not_encrypted"],
    ["another algorithm", { algorithm: "m.olm.v1.curve25519-aes-sha2" }, "unsupported_algorithm"],
    ["no algorithm", {}, "unsupported_algorithm"],
  ])("refuses a room with %s", (_what, content, code) => {
    expect(() => roomEncryptionFrom("!r:hs", content, null)).toThrow(
      expect.objectContaining({ name: "RoomError", code }),
    );
  });
});

describe("encryptionTargets", () => {
  const members = new Map([
    ["@a:hs", "join"],
    ["@b:hs", "invite"],
    ["@c:hs", "leave"],
    ["@d:hs", "ban"],
    ["@e:hs", "knock"],
  ]);

  it("includes invited members unless history is visible to joined members only", () => {
    expect(encryptionTargets(members, "shared")).toEqual(["@a:hs", "@b:hs"]);
    expect(encryptionTargets(members, "invited")).toEqual(["@a:hs", "@b:hs"]);
    expect(encryptionTargets(members, "joined")).toEqual(["@a:hs"]);
  });
});
