import type { z } from "zod";

/**
 * The demo's own Client-Server API calls over `fetch`, as an app has them beside the SDK: the SDK
 * handles devices, keys and encrypted messages, not accounts or timelines. Register, login,
 * createRoom, join, `/sync` and `/messages`.
 *
 * Calls that are safe to repeat (reads, joins) are retried on 429, 5xx and network errors,
 * honouring `retry_after_ms`; the others (register, login, createRoom) fail at once and are the
 * step's to resume. Errors carry method, path, status and
 * `errcode`, never the access token, which travels only in the `Authorization` header.
 */

export type Fetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/** What the log shows before a retry: no body, no header. */
export interface RetryNotice {
  method: string;
  path: string;
  /** `undefined` for a network error. */
  status: number | undefined;
  errcode: string | undefined;
  attempt: number;
  delayMs: number;
}

export interface MatrixCallsOptions {
  baseUrl: string;
  fetch: Fetch;
  /** Omitted for register and login. */
  accessToken?: string;
  onRetry?: (notice: RetryNotice) => void;
  /** Attempts of a repeatable call in total, the first included. Default 5. */
  maxAttempts?: number;
}

export interface Call<T> {
  method: "GET" | "POST" | "PUT";
  /** Already encoded (see `path`). */
  path: string;
  query?: Record<string, string | number>;
  body?: unknown;
  schema: z.ZodType<T>;
  /** Whether sending it twice does no harm; default true for GET and PUT (transaction ids), false otherwise. */
  repeatable?: boolean;
  signal?: AbortSignal;
}

/**
 * A failed call. `code` is the server's `errcode` (`M_FORBIDDEN`, `M_LIMIT_EXCEEDED`, …), or
 * `network_error` / `malformed_response`.
 */
export class MatrixCallError extends Error {
  override name = "MatrixCallError";
  readonly code: string;
  readonly status: number | undefined;
  /** The session of a user-interactive-auth challenge (401 with `flows`). */
  readonly uiaSession: string | undefined;
  /** How long a 429 asked to wait (`retry_after_ms` or `Retry-After`). */
  readonly retryAfterMs: number | undefined;

  constructor(
    message: string,
    details: {
      code: string;
      status?: number | undefined;
      uiaSession?: string | undefined;
      retryAfterMs?: number | undefined;
      cause?: unknown;
    },
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = details.code;
    this.status = details.status;
    this.uiaSession = details.uiaSession;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** `path\`/rooms/${roomId}/send/${txnId}\``: each value percent-encoded as one path segment. */
export function path(strings: TemplateStringsArray, ...values: string[]): string {
  return strings.reduce(
    (out, part, i) => out + part + (i < values.length ? encodeURIComponent(values[i]!) : ""),
    "",
  );
}

/** `/_matrix/client/v3/keys/upload` → `keys/upload`: the log is for people. */
export function shortPath(fullPath: string): string {
  return fullPath.replace(/^\/_matrix\/client\/(v3|r0|unstable\/[^/]+)\//, "");
}

export class MatrixCalls {
  readonly #options: MatrixCallsOptions;

  constructor(options: MatrixCallsOptions) {
    this.#options = options;
  }

  async request<T>(call: Call<T>): Promise<T> {
    const repeatable = call.repeatable ?? call.method !== "POST";
    const maxAttempts = repeatable ? (this.#options.maxAttempts ?? 5) : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#once(call);
      } catch (error) {
        const retryable =
          error instanceof MatrixCallError &&
          (error.status === undefined
            ? error.code === "network_error"
            : error.status === 429 || error.status >= 500);
        if (!retryable || attempt >= maxAttempts || call.signal?.aborted) throw error;
        const delayMs = retryDelayMs(error, attempt);
        this.#options.onRetry?.({
          method: call.method,
          path: call.path,
          status: error.status,
          errcode: error.status === undefined ? undefined : error.code,
          attempt,
          delayMs,
        });
        await sleep(delayMs, call.signal);
      }
    }
  }

  async #once<T>(call: Call<T>): Promise<T> {
    const url = new URL(call.path, this.#options.baseUrl);
    for (const [name, value] of Object.entries(call.query ?? {})) url.searchParams.set(name, String(value));
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.#options.accessToken !== undefined)
      headers.authorization = `Bearer ${this.#options.accessToken}`;
    if (call.body !== undefined) headers["content-type"] = "application/json";
    const what = `${call.method} ${shortPath(call.path)}`;
    let response: Response;
    try {
      response = await this.#options.fetch(url, {
        method: call.method,
        headers,
        body: call.body === undefined ? undefined : JSON.stringify(call.body),
        signal: call.signal,
      });
    } catch (cause) {
      if (call.signal?.aborted) throw cause;
      throw new MatrixCallError(`${what}: no answer (network error)`, { code: "network_error", cause });
    }
    const json: unknown = await response.json().catch(() => undefined);
    if (!response.ok) {
      const body = (typeof json === "object" && json !== null ? json : {}) as Record<string, unknown>;
      const errcode = typeof body.errcode === "string" ? body.errcode : `HTTP_${response.status}`;
      const text = typeof body.error === "string" ? body.error : response.statusText;
      const retryAfter =
        typeof body.retry_after_ms === "number" ? body.retry_after_ms : headerRetryAfterMs(response.headers);
      throw new MatrixCallError(`${what} → ${response.status} ${errcode}: ${text}`, {
        code: errcode,
        status: response.status,
        uiaSession: response.status === 401 && typeof body.session === "string" ? body.session : undefined,
        retryAfterMs: retryAfter,
      });
    }
    const parsed = call.schema.safeParse(json);
    if (!parsed.success) {
      throw new MatrixCallError(`${what}: the answer is not what the spec says`, {
        code: "malformed_response",
        status: response.status,
      });
    }
    return parsed.data;
  }
}

function headerRetryAfterMs(headers: Headers): number | undefined {
  const seconds = Number(headers.get("retry-after") ?? Number.NaN);
  return Number.isFinite(seconds) ? seconds * 1000 : undefined;
}

/** The server's wait when it gave one (capped at 10 s), else exponential backoff with jitter. */
function retryDelayMs(error: MatrixCallError, attempt: number): number {
  const asked = error.retryAfterMs;
  if (asked !== undefined) return Math.min(10_000, Math.max(0, asked));
  const ceiling = Math.min(4_000, 250 * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
