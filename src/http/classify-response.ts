import type { MatrixApiErrorKind } from "../errors/matrix-api-error.js";
import { retryAfterMs } from "./retry-after.js";
import { matrixErrorBodySchema, uiaResponseSchema } from "./schemas/error.js";

/**
 * Maps a non-2xx HTTP response to how it is retried, as explicit rules (first match wins):
 *
 * 1. 429 → rate-limited (with or without an errcode).
 * 2. `M_LIMIT_EXCEEDED` with any status → rate-limited.
 * 3. 401 with a UIA challenge (`uiaResponseSchema`: a `flows` list of stage lists) → permanent:
 *    the caller must complete authentication.
 * 4. 4xx with an errcode → permanent (the server understood and refused).
 * 5. 405 or 501 without an errcode → permanent: the method or endpoint is not served, which no
 *    retry changes (some frameworks send a bare 405); callers negotiate a fallback instead.
 * 6. Other 4xx without an errcode → transient (a proxy or load balancer answered, not the homeserver).
 * 7. Other 5xx → transient.
 * 8. Anything else (1xx, 3xx left unfollowed) → permanent.
 */
export interface HttpFailureInput {
  status: number;
  /** The parsed JSON body, or `undefined` when the body was empty or not JSON. */
  body: unknown;
  retryAfterHeader: string | null;
  nowMs: number;
}

export interface ClassifiedFailure {
  kind: MatrixApiErrorKind;
  errcode: string | undefined;
  error: string | undefined;
  retryAfterMs: number | undefined;
  softLogout: boolean;
}

export function classifyHttpFailure(input: HttpFailureInput): ClassifiedFailure {
  const parsed = matrixErrorBodySchema.safeParse(input.body);
  const body = parsed.success ? parsed.data : undefined;
  const errcode = body?.errcode;
  const common = {
    errcode,
    error: body?.error,
    retryAfterMs: retryAfterMs(input.retryAfterHeader, body?.retry_after_ms, input.nowMs),
    softLogout: body?.soft_logout === true,
  };
  const { status } = input;
  if (status === 429 || errcode === "M_LIMIT_EXCEEDED") return { kind: "rate-limited", ...common };
  if (status === 401 && uiaResponseSchema.safeParse(input.body).success)
    return { kind: "permanent", ...common };
  if (status === 405 || status === 501) return { kind: "permanent", ...common };
  if (status >= 400 && status < 500) return { kind: errcode ? "permanent" : "transient", ...common };
  if (status >= 500 && status < 600) return { kind: "transient", ...common };
  return { kind: "permanent", ...common };
}
