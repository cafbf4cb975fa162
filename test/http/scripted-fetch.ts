import type { FetchLike } from "../../src/http/matrix-http.js";

/** One scripted answer: a response, a thrown error, a function of the request, or a hang. */
export type Step =
  | Response
  | Error
  | ((request: Request) => Response | Promise<Response>)
  /** Never answers; rejects when the request's signal aborts, like a real fetch. */
  | "hang"
  /** Never answers and ignores the signal, like a badly behaved custom fetch. */
  | "hang-ignoring-signal";

export interface RecordedCall {
  method: string;
  url: URL;
  path: string;
  authorization: string | null;
  body: string;
  atMs: number;
}

/**
 * A fetch that answers from a script, in order, and records what it was asked. Running past the
 * end of the script fails the test loudly.
 */
export class ScriptedFetch {
  readonly calls: RecordedCall[] = [];
  #steps: Step[] = [];
  #now: () => number;

  constructor(now: () => number = () => 0) {
    this.#now = now;
  }

  push(...steps: Step[]): this {
    this.#steps.push(...steps);
    return this;
  }

  get remaining(): number {
    return this.#steps.length;
  }

  readonly fetch: FetchLike = async (request) => {
    const url = new URL(request.url);
    this.calls.push({
      method: request.method,
      url,
      path: url.pathname,
      authorization: request.headers.get("authorization"),
      body: await request.text(),
      atMs: this.#now(),
    });
    const step = this.#steps.shift();
    if (step === undefined) throw new Error(`unscripted request ${request.method} ${url.pathname}`);
    if (step instanceof Response) return step;
    if (step instanceof Error) throw step;
    if (step === "hang") {
      return new Promise<Response>((_, reject) => {
        const signal = request.signal;
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    }
    if (step === "hang-ignoring-signal") return new Promise<Response>(() => {});
    return step(request);
  };
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export function text(status: number, body: string, contentType = "text/html"): Response {
  return new Response(body, { status, headers: { "content-type": contentType } });
}

/** What undici throws for a refused or dropped connection. */
export function fetchFailed(): TypeError {
  return new TypeError("fetch failed", {
    cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
  });
}

/** A 200 whose body stream errors half-way, like a connection dropped mid-response. */
export function droppedMidBody(): Response {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('{"one_time_keys": {'));
      controller.error(new TypeError("terminated"));
    },
  });
  return new Response(stream, { status: 200, headers: { "content-type": "application/json" } });
}

export interface CapturedLogger {
  lines: string[];
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/** A logger that keeps every line, so tests can assert on what would have been logged. */
export function captureLogger(): CapturedLogger {
  const lines: string[] = [];
  const sink =
    (level: string) =>
    (...args: unknown[]) =>
      lines.push(`${level} ${args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ")}`);
  return { lines, debug: sink("debug"), info: sink("info"), warn: sink("warn"), error: sink("error") };
}
