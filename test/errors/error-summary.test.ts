import { describe, expect, it } from "vitest";
import { errorSummary } from "../../src/errors/error-summary.js";
import { MatrixApiError } from "../../src/errors/matrix-api-error.js";
import { SdkError } from "../../src/errors/sdk-error.js";

const SECRET = "c2VjcmV0LWtleS1tYXRlcmlhbA";

describe("errorSummary", () => {
  it("keeps what identifies an API error and drops its body", () => {
    const error = new MatrixApiError({
      status: 400,
      errcode: "M_BAD_JSON",
      error: "bad",
      retryAfterMs: undefined,
      softLogout: false,
      kind: "permanent",
      method: "PUT",
      path: "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device",
      data: { errcode: "M_BAD_JSON", echoed: { device_data: { account: SECRET } } },
    });
    const summary = errorSummary(error);
    expect(summary).toEqual({
      name: "MatrixApiError",
      code: "matrix_api_error",
      status: 400,
      errcode: "M_BAD_JSON",
      message: error.message,
    });
    expect(JSON.stringify(summary)).not.toContain(SECRET);
  });

  it("leaves out details and the cause chain", () => {
    const error = new SdkError("something_failed", "it failed", {
      details: { key: SECRET },
      cause: new Error(`inner ${SECRET}`),
    });
    expect(JSON.stringify(errorSummary(error))).not.toContain(SECRET);
  });

  it("describes a thrown non-object by its text", () => {
    expect(errorSummary("boom")).toEqual({ error: "boom" });
    expect(errorSummary(undefined)).toEqual({ error: "undefined" });
  });
});
