import type { KyInstance } from "ky";
import type { z } from "zod";
import type { FieldIssue } from "../errors/malformed-response-error.js";
import { MalformedResponseError } from "../errors/malformed-response-error.js";
import { MatrixApiError } from "../errors/matrix-api-error.js";
import { NetworkError } from "../errors/network-error.js";
import { classifyHttpFailure } from "./classify-response.js";
import { redact, redactJson } from "./redact.js";
import type { AttemptResult } from "./retry-loop.js";
import type { MatrixRequest } from "./types.js";

export interface AttemptContext {
  ky: KyInstance;
  url: string;
  /** The token to send, or undefined for an unauthenticated request. */
  accessToken: string | undefined;
  nowMs: () => number;
}

/**
 * One HTTP exchange: send, read the whole body, and turn the result into a value or a classified
 * failure. Never throws for anything the network or the server does; only the per-attempt
 * `signal` can interrupt it. Errors carry method and path, never the URL's query or the token.
 */
export async function sendAttempt<S extends z.ZodType>(
  req: MatrixRequest<S>,
  ctx: AttemptContext,
  signal: AbortSignal,
): Promise<AttemptResult<z.output<S>>> {
  const path = stripQuery(req.path);
  const network = (cause: unknown): AttemptResult<never> => ({
    ok: false,
    outcome: "network",
    error: new NetworkError(req.method, path, { cause: unwrapKyError(cause) }),
  });

  let status: number;
  let retryAfterHeader: string | null;
  let text: string;
  try {
    const response = await ctx.ky(ctx.url, {
      method: req.method,
      searchParams: req.query,
      json: req.body ?? (req.method === "POST" || req.method === "PUT" ? {} : undefined),
      headers: ctx.accessToken === undefined ? {} : { authorization: `Bearer ${ctx.accessToken}` },
      signal,
    });
    status = response.status;
    retryAfterHeader = response.headers.get("retry-after");
    // Reading the body is part of the attempt: a connection dropped mid-body is a network failure.
    text = await response.text();
  } catch (err) {
    return network(err);
  }

  const json = parseJson(text);
  if (status >= 200 && status < 300) {
    if (json === notJson) {
      return malformed(req.method, path, [{ path: "(body)", code: "not_json" }]);
    }
    const parsed = await req.schema.safeParseAsync(json);
    if (!parsed.success) return malformed(req.method, path, parsed.error.issues.map(toFieldIssue));
    return { ok: true, value: parsed.data };
  }

  const body = json === notJson ? undefined : json;
  const failure = classifyHttpFailure({ status, body, retryAfterHeader, nowMs: ctx.nowMs() });
  const error = new MatrixApiError({
    status,
    errcode: failure.errcode,
    error: failure.error === undefined ? undefined : redact(failure.error, [ctx.accessToken]),
    retryAfterMs: failure.retryAfterMs,
    softLogout: failure.softLogout,
    kind: failure.kind,
    method: req.method,
    path,
    data: redactJson(body, [ctx.accessToken]),
  });
  return { ok: false, outcome: failure.kind, error, retryAfterMs: failure.retryAfterMs };
}

const notJson = Symbol("not JSON");

function parseJson(text: string): unknown {
  if (text.trim() === "") return notJson;
  try {
    return JSON.parse(text);
  } catch {
    return notJson;
  }
}

function malformed(method: string, path: string, issues: FieldIssue[]): AttemptResult<never> {
  return { ok: false, outcome: "permanent", error: new MalformedResponseError(method, path, issues) };
}

/**
 * A zod issue as a `FieldIssue`: the field path and issue kind only, never the value (zod messages
 * for some issue kinds quote the received value).
 */
export function toFieldIssue(issue: z.core.$ZodIssue): FieldIssue {
  const expected = "expected" in issue && typeof issue.expected === "string" ? issue.expected : undefined;
  return {
    path: issue.path.length === 0 ? "(body)" : issue.path.map(String).join("."),
    code: issue.code,
    ...(expected === undefined ? {} : { expected }),
  };
}

function stripQuery(path: string): string {
  const i = path.search(/[?#]/);
  return i === -1 ? path : path.slice(0, i);
}

/**
 * ky wraps network failures in its own error whose message and `request` hold the full URL and
 * headers (the token among them). Keep only the underlying cause, never ky's wrapper.
 */
function unwrapKyError(err: unknown): unknown {
  if (err instanceof Error && (err as { request?: unknown }).request !== undefined) {
    return err.cause;
  }
  return err;
}
