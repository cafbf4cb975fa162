import { errorGuard, SdkError } from "./sdk-error.js";

/**
 * How the transport classified a failed HTTP response (see `src/http/classify-response.ts`):
 * `permanent` is the server's final word, `rate-limited` and `transient` may succeed if repeated.
 */
export type MatrixApiErrorKind = "permanent" | "rate-limited" | "transient";

/** The fields of a `MatrixApiError`, as the transport reads them off a response. */
export interface MatrixApiErrorInit {
  status: number;
  /** The Matrix `errcode`; `undefined` when the body had none (a proxy page, a UIA challenge). */
  errcode: string | undefined;
  /** The server's human-readable `error` text, with any access token redacted. */
  error: string | undefined;
  /** How long the server asked us to wait (429 `retry_after_ms` or `Retry-After`). */
  retryAfterMs: number | undefined;
  /** `soft_logout: true` on a 401 `M_UNKNOWN_TOKEN` (spec: "Soft logout"). */
  softLogout: boolean;
  kind: MatrixApiErrorKind;
  method: string;
  /** Path only: never the query string, so never an `access_token` parameter. */
  path: string;
  /** The JSON error body (e.g. a UIA challenge `{flows, session, params}`), when it was JSON. */
  data: unknown;
}

/** A homeserver answered with a non-2xx status. Never carries the access token. */
export class MatrixApiError extends SdkError<"matrix_api_error"> {
  override name = "MatrixApiError";
  readonly status: number;
  readonly errcode: string | undefined;
  readonly error: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly softLogout: boolean;
  readonly kind: MatrixApiErrorKind;
  readonly method: string;
  readonly path: string;
  readonly data: unknown;

  constructor(init: MatrixApiErrorInit) {
    const what = init.errcode ?? `HTTP ${init.status}`;
    const text = init.error ? `: ${init.error}` : "";
    super("matrix_api_error", `${init.method} ${init.path} failed with ${init.status} ${what}${text}`, {
      details: { status: init.status, errcode: init.errcode, method: init.method, path: init.path },
    });
    this.status = init.status;
    this.errcode = init.errcode;
    this.error = init.error;
    this.retryAfterMs = init.retryAfterMs;
    this.softLogout = init.softLogout;
    this.kind = init.kind;
    this.method = init.method;
    this.path = init.path;
    this.data = init.data;
  }
}

/** A non-2xx answer from the homeserver. */
export const isMatrixApiError = errorGuard<MatrixApiError>("MatrixApiError");
