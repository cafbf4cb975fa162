import { SdkError } from "../errors/sdk-error.js";
import type { HttpErrorCode } from "./types.js";

/**
 * Builds a request path from a template, percent-encoding every interpolated value as one path
 * segment. Identifiers need it: a dehydrated device id is unpadded base64 and contains `/` and `+`
 * (MSC3814), user ids contain `@` and `:`, event types may contain anything.
 *
 *   matrixPath`/_matrix/client/v3/user/${userId}/account_data/${type}`
 *
 * `.` and `..` are refused: WHATWG URL parsing collapses them (even percent-encoded), so the
 * request would silently reach a different endpoint. An empty value is refused for the same reason.
 */
export function matrixPath(strings: TemplateStringsArray, ...values: readonly string[]): string {
  let out = strings[0] ?? "";
  values.forEach((value, i) => {
    out += encodePathSegment(value) + (strings[i + 1] ?? "");
  });
  return out;
}

export function encodePathSegment(value: string): string {
  if (typeof value !== "string" || value === "" || value === "." || value === "..") {
    throw new SdkError<HttpErrorCode>(
      "invalid_path_segment",
      "A path segment must be a non-empty string other than . or ..",
    );
  }
  return encodeURIComponent(value);
}
