import type { z } from "zod";
import { MalformedResponseError } from "../../../src/errors/malformed-response-error.js";
import { MatrixApiError } from "../../../src/errors/matrix-api-error.js";
import type { MatrixHttp, MatrixRequest, RetryMode } from "../../../src/http/types.js";

export interface RecordedCall {
  method: string;
  /** Path below `/_matrix/client/v3`, as sent (still URL-encoded). */
  endpoint: string;
  path: string;
  query: Record<string, string | number | boolean | undefined> | undefined;
  body: unknown;
  retry: RetryMode | undefined;
  signal: AbortSignal | undefined;
}

export type Responder = (call: RecordedCall) => unknown;

const PREFIX = "/_matrix/client/v3";

/**
 * A `MatrixHttp` double that records every call and answers from per-endpoint responders. Like the
 * real transport it validates the body with the request's schema and throws `MalformedResponseError`
 * on a mismatch; it never retries (retry decisions are asserted through `calls[i].retry`).
 */
export class FakeMatrixHttp implements MatrixHttp {
  readonly calls: RecordedCall[] = [];
  readonly #responders: { method: string; endpoint: string | RegExp; respond: Responder }[] = [];

  /** Later registrations win, so a test can override one endpoint of a shared setup. */
  on(method: string, endpoint: string | RegExp, respond: Responder): this {
    this.#responders.unshift({ method, endpoint, respond });
    return this;
  }

  callsTo(method: string, endpoint: string | RegExp): RecordedCall[] {
    return this.calls.filter((c) => c.method === method && matches(endpoint, c.endpoint));
  }

  async request<S extends z.ZodType>(req: MatrixRequest<S>): Promise<z.infer<S>> {
    const endpoint = req.path.startsWith(PREFIX) ? req.path.slice(PREFIX.length) : req.path;
    const call: RecordedCall = {
      method: req.method,
      endpoint,
      path: req.path,
      query: req.query,
      body: structuredClone(req.body),
      retry: req.retry,
      signal: req.signal,
    };
    this.calls.push(call);
    const responder = this.#responders.find((r) => r.method === req.method && matches(r.endpoint, endpoint));
    if (!responder) {
      throw apiError(req.method, req.path, 404, { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" });
    }
    const body = await responder.respond(call);
    const parsed = req.schema.safeParse(body);
    if (!parsed.success) {
      throw new MalformedResponseError(
        req.method,
        req.path,
        parsed.error.issues.map((i) => ({ path: i.path.join(".") || "(body)", code: i.code })),
      );
    }
    return parsed.data;
  }
}

export function apiError(
  method: string,
  path: string,
  status: number,
  data: Record<string, unknown>,
  retryAfterMs?: number,
): MatrixApiError {
  const errcode = typeof data.errcode === "string" ? data.errcode : undefined;
  return new MatrixApiError({
    status,
    errcode,
    error: typeof data.error === "string" ? data.error : undefined,
    retryAfterMs,
    softLogout: false,
    kind: status === 429 ? "rate-limited" : status >= 500 ? "transient" : "permanent",
    method,
    path,
    data,
  });
}

function matches(pattern: string | RegExp, endpoint: string): boolean {
  return typeof pattern === "string" ? pattern === endpoint : pattern.test(endpoint);
}

/** A promise with its resolvers, for holding a response until the test releases it. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
