import { describe, expect, it } from "vitest";
import { DrainError } from "../../src/dehydration/drain/errors.js";
import { toErrorInfo, withErrorInfo } from "../../src/errors/error-info.js";
import { MatrixApiError } from "../../src/errors/matrix-api-error.js";

describe("toErrorInfo", () => {
  it("keeps what the SDK's errors say, with the cause chain, as plain data", () => {
    const server = new MatrixApiError({
      method: "GET",
      path: "/x",
      status: 429,
      errcode: "M_LIMIT_EXCEEDED",
      error: "slow down",
      retryAfterMs: 1200,
      softLogout: false,
      kind: "rate_limited" as never,
      data: { secret_in_body: "do-not-copy" },
    });
    const drain = new DrainError("fetch_failed", "could not fetch a page", {
      cause: server,
      details: { deviceId: "D", cursor: "c1", pages: 1, events: 2, roomKeys: 0 },
    });
    const info = toErrorInfo(drain);
    expect(info).toMatchObject({
      name: "DrainError",
      code: "fetch_failed",
      details: { cursor: "c1" },
      cause: { name: "MatrixApiError", status: 429, errcode: "M_LIMIT_EXCEEDED", retryAfterMs: 1200 },
    });
    expect(structuredClone(info)).toEqual(info);
    expect(JSON.parse(JSON.stringify(info))).toEqual(JSON.parse(JSON.stringify(structuredClone(info))));
    // The server body stays on the thrown error only.
    expect(JSON.stringify(info)).not.toContain("do-not-copy");
  });

  it("reads foreign errors and thrown non-errors", () => {
    expect(toErrorInfo(new TypeError("boom"))).toEqual({
      name: "TypeError",
      code: undefined,
      message: "boom",
    });
    expect(toErrorInfo("text")).toEqual({ name: "Error", code: undefined, message: "text" });
  });

  it("drops what is not plain data from details and stops at cycles", () => {
    const e = Object.assign(new Error("x"), { details: { fn: () => 1, when: new Date(0), ok: [1, "a"] } });
    (e as { cause?: unknown }).cause = e;
    const info = toErrorInfo(e);
    expect(info.details).toEqual({ ok: [1, "a"] });
    expect(() => structuredClone(info)).not.toThrow();
  });

  it("leaves a payload without an error, or with an undefined one, as it was", () => {
    expect(withErrorInfo({ a: 1 })).toEqual({ a: 1 });
    expect(withErrorInfo({ error: undefined, reason: "r" })).toEqual({ error: undefined, reason: "r" });
  });
});
