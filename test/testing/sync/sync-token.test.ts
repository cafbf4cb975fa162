import { describe, expect, it } from "vitest";
import {
  formatPaginationToken,
  formatSyncToken,
  isReachable,
  parsePaginationToken,
  parseSyncToken,
} from "../../../src/testing/sync/sync-token.js";

describe("sync tokens", () => {
  it("round-trips every stream position", () => {
    const p = { rooms: 12, toDevice: 3, keys: 45, accountData: 6 };

    expect(formatSyncToken(p)).toBe("s12_3_45_6");
    expect(parseSyncToken(formatSyncToken(p))).toEqual(p);
  });

  it("rejects anything else", () => {
    for (const bad of ["", "s1_2_3", "s1_2_3_4_5", "x1_2_3_4", "s-1_2_3_4", "s1_2_3_9999999999999999"]) {
      expect(parseSyncToken(bad), bad).toBeUndefined();
    }
  });

  it("reads the room position from pagination and sync tokens", () => {
    expect(parsePaginationToken(formatPaginationToken(7))).toBe(7);
    expect(parsePaginationToken("s9_1_1_1")).toBe(9);
    expect(parsePaginationToken("t")).toBeUndefined();
  });

  it("calls a token reachable only if no stream is ahead of the server", () => {
    const now = { rooms: 5, toDevice: 5, keys: 5, accountData: 5 };
    expect(isReachable({ ...now, keys: 4 }, now)).toBe(true);
    expect(isReachable({ ...now, toDevice: 6 }, now)).toBe(false);
  });
});
