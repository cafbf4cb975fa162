import { describe, expect, it } from "vitest";
import { parseRetryAfterHeader, retryAfterMs } from "../../src/http/retry-after.js";

const now = Date.UTC(2026, 0, 15, 12, 0, 0);

describe("Retry-After parsing", () => {
  it.each([
    ["delay-seconds", "7", 7_000],
    ["delay-seconds with whitespace", " 2 ", 2_000],
    ["zero seconds", "0", 0],
    ["an HTTP date in the future, on the given clock", "Thu, 15 Jan 2026 12:00:30 GMT", 30_000],
    ["an HTTP date in the past", "Thu, 15 Jan 2026 11:00:00 GMT", 0],
    ["garbage", "soon", undefined],
    ["a negative number", "-3", undefined],
    ["a fraction (not delay-seconds)", "1.5", undefined],
    ["an empty header", "", undefined],
    ["no header", null, undefined],
  ] as const)("reads %s", (_name, header, expected) => {
    expect(parseRetryAfterHeader(header, now)).toBe(expected);
  });

  it("prefers the header over the deprecated body field when they disagree", () => {
    expect(retryAfterMs("3", 9_000, now)).toBe(3_000);
  });

  it("uses the body's precise wait when the header is that wait rounded up to seconds", () => {
    expect(retryAfterMs("1", 5, now)).toBe(5);
    expect(retryAfterMs("3", 2_500, now)).toBe(2_500);
    expect(retryAfterMs("2", 2_000, now)).toBe(2_000);
    // 2,001 ms rounds up to 3 s, so a header of 2 s is a different wait: the header wins.
    expect(retryAfterMs("2", 2_001, now)).toBe(2_000);
  });

  it("falls back to the body field when the header is missing or unreadable", () => {
    expect(retryAfterMs(null, 9_000, now)).toBe(9_000);
    expect(retryAfterMs("later", 9_000, now)).toBe(9_000);
  });
});
