import { describe, expect, it } from "vitest";
import { z } from "zod";
import { resolveProfile } from "../../src/testing/profiles.js";
import { MatrixError } from "../../src/testing/route.js";
import { parseBody } from "../../src/testing/validation.js";

const schema = z.object({
  name: z.string(),
  count: z.number().int(),
  nested: z.object({ id: z.string() }).optional(),
  even: z
    .number()
    .refine((n) => n % 2 === 0)
    .optional(),
});

function errcodeFor(body: unknown, profile = resolveProfile("synapse-1.157"), method = "POST"): string {
  try {
    parseBody({ body, method, profile }, schema);
    return "ok";
  } catch (err) {
    if (err instanceof MatrixError) return `${err.status} ${err.errcode}`;
    throw err;
  }
}

describe("parseBody, Synapse's mapping", () => {
  it("accepts a valid body", () => {
    expect(errcodeFor({ name: "a", count: 1 })).toBe("ok");
  });

  it("maps exactly one missing field to M_MISSING_PARAM, also when nested", () => {
    expect(errcodeFor({ count: 1 })).toBe("400 M_MISSING_PARAM");
    expect(errcodeFor({ name: "a", count: 1, nested: {} })).toBe("400 M_MISSING_PARAM");
  });

  it("maps a wrong type, or several problems, to M_BAD_JSON", () => {
    expect(errcodeFor({ name: 1, count: 1 })).toBe("400 M_BAD_JSON");
    expect(errcodeFor({})).toBe("400 M_BAD_JSON");
    expect(errcodeFor({ name: "a", count: 1.5 })).toBe("400 M_BAD_JSON");
  });

  it("maps exactly one rejected value to M_INVALID_PARAM", () => {
    expect(errcodeFor({ name: "a", count: 1, even: 3 })).toBe("400 M_INVALID_PARAM");
  });

  it("maps a missing body to M_NOT_JSON and a non-object to M_BAD_JSON", () => {
    expect(errcodeFor(undefined)).toBe("400 M_NOT_JSON");
    expect(errcodeFor([1])).toBe("400 M_BAD_JSON");
    expect(errcodeFor(null)).toBe("400 M_BAD_JSON");
  });
});

describe("parseBody, ruma's mapping", () => {
  const ruma = resolveProfile("tuwunel");
  it("reports every failure as M_BAD_JSON", () => {
    expect(errcodeFor({ count: 1 }, ruma)).toBe("400 M_BAD_JSON");
    expect(errcodeFor({ name: "a", count: 1, even: 3 }, ruma)).toBe("400 M_BAD_JSON");
  });

  it("reads an empty POST or DELETE body as {}, but not an empty PUT", () => {
    expect(errcodeFor(undefined, ruma, "POST")).toBe("400 M_BAD_JSON");
    expect(errcodeFor(undefined, ruma, "PUT")).toBe("400 M_NOT_JSON");
  });
});
