import { errorGuard, SdkError } from "./sdk-error.js";

/** One attempt took longer than its per-attempt timeout (measured on the injected Clock). */
export class TimeoutError extends SdkError<"timeout"> {
  override name = "TimeoutError";
  readonly method: string;
  readonly path: string;
  readonly timeoutMs: number;

  constructor(method: string, path: string, timeoutMs: number) {
    super("timeout", `${method} ${path} timed out after ${timeoutMs} ms`, {
      details: { method, path, timeoutMs },
    });
    this.method = method;
    this.path = path;
    this.timeoutMs = timeoutMs;
  }
}

/** An attempt that outlasted its timeout. */
export const isTimeoutError = errorGuard<TimeoutError>("TimeoutError");
