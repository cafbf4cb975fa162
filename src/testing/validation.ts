import type { z } from "zod";
import type { Profile } from "./profiles.js";
import { MatrixError, type RouteContext } from "./route.js";

/**
 * Request-body validation with the error codes real servers send. Synapse
 * (synapse/http/servlet.py): a body that is not JSON → `M_NOT_JSON` "Content not JSON."; JSON that
 * is not an object → `M_BAD_JSON`; then model validation where exactly one missing field →
 * `M_MISSING_PARAM`, exactly one rejected value → `M_INVALID_PARAM`, anything else (wrong types,
 * several problems) → `M_BAD_JSON`. ruma-based servers (tuwunel) report every failure as `M_BAD_JSON`.
 */

type Ctx = Pick<RouteContext<unknown, Profile>, "body" | "method" | "profile">;

/** The body as a JSON object, before any schema: what every endpoint with a body checks first. */
export function jsonObjectBody(ctx: Ctx): Record<string, unknown> {
  const body = ctx.body;
  if (body === undefined) {
    if (ctx.profile.emptyBodyIsEmptyObject && (ctx.method === "POST" || ctx.method === "DELETE")) return {};
    throw new MatrixError(400, "M_NOT_JSON", "Content not JSON.");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new MatrixError(400, "M_BAD_JSON", "Content must be a JSON object.");
  }
  return body as Record<string, unknown>;
}

/** Parses the body with `schema`, throwing the profile's error for the first thing wrong. */
export function parseBody<S extends z.ZodType>(ctx: Ctx, schema: S): z.infer<S> {
  return validateValue(ctx.profile, jsonObjectBody(ctx), schema);
}

/** The same mapping for a value that is already a JSON object (e.g. a body read with `jsonObjectBody`). */
export function validateValue<S extends z.ZodType>(profile: Profile, value: unknown, schema: S): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw validationError(profile, value, result.error.issues);
}

export function validationError(
  profile: Profile,
  input: unknown,
  issues: readonly z.core.$ZodIssue[],
): MatrixError {
  const message = issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join(".") : "body"}: ${i.message}`)
    .join("; ");
  if (profile.validationErrors === "ruma" || issues.length !== 1) {
    return new MatrixError(400, "M_BAD_JSON", message);
  }
  const issue = issues[0]!;
  if (issue.code === "invalid_type" && isMissing(input, issue.path)) {
    return new MatrixError(400, "M_MISSING_PARAM", message);
  }
  if (issue.code === "custom") return new MatrixError(400, "M_INVALID_PARAM", message);
  return new MatrixError(400, "M_BAD_JSON", message);
}

/** True when the value at `path` is absent while its parent object exists. */
function isMissing(input: unknown, path: readonly PropertyKey[]): boolean {
  if (path.length === 0) return false;
  let parent: unknown = input;
  for (const key of path.slice(0, -1)) {
    if (typeof parent !== "object" || parent === null) return false;
    parent = (parent as Record<PropertyKey, unknown>)[key];
  }
  if (typeof parent !== "object" || parent === null) return false;
  return !Object.hasOwn(parent, path.at(-1) as PropertyKey);
}
