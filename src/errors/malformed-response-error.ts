import { errorGuard, SdkError } from "./sdk-error.js";

/** One failed check: where in the body, and what kind of failure — never the offending value. */
export interface FieldIssue {
  /** Dotted field path, e.g. `device_keys.@alice:example.org.ABC.keys`; `(body)` for the whole body. */
  path: string;
  /** The validator's issue code, e.g. `invalid_type`, or `not_json`. */
  code: string;
  /** The expected type, when the validator names one. */
  expected?: string;
}

/**
 * A 2xx response whose body is not JSON or does not match the endpoint's schema. Says which
 * endpoint and which fields, never the values (they may be keys or tokens).
 */
export class MalformedResponseError extends SdkError<"malformed_response"> {
  override name = "MalformedResponseError";
  readonly method: string;
  readonly path: string;
  readonly issues: readonly FieldIssue[];

  constructor(method: string, path: string, issues: readonly FieldIssue[]) {
    const shown = issues
      .slice(0, 5)
      .map((i) => `${i.path} (${i.code}${i.expected ? `, expected ${i.expected}` : ""})`)
      .join("; ");
    const more = issues.length > 5 ? `; and ${issues.length - 5} more` : "";
    super("malformed_response", `Malformed response from ${method} ${path}: ${shown}${more}`, {
      details: { method, path, issues },
    });
    this.method = method;
    this.path = path;
    this.issues = Object.freeze([...issues]);
  }
}

/** A 2xx response that failed its schema. */
export const isMalformedResponseError = errorGuard<MalformedResponseError>("MalformedResponseError");
