import type { E2eeClientEventStream, E2eeClientEvents } from "matrix-e2ee-devices";
import { describeError, type LogPanel } from "./log-panel.js";
import { type RetryNotice, shortPath } from "./matrix-calls.js";

/**
 * What an app would surface from the SDK's events: retries of the transport (the knobs of the
 * embedded server make them happen) and background failures of the crypto request loop, plus the
 * retries of the app's own calls. Payloads carry methods, paths and codes, never tokens or keys.
 */

export interface RetryCounter {
  /** Retries by the SDK's transport. */
  sdk: number;
  /** Retries of the demo's own calls (`matrix-calls.ts`). */
  app: number;
}

export function watchClient(
  events: E2eeClientEventStream,
  log: LogPanel,
  actor: string,
  counter: RetryCounter,
): () => void {
  const stops = [
    events.on("http.requestRetried", (e: E2eeClientEvents["http.requestRetried"]) => {
      counter.sdk++;
      const answer = e.status === undefined ? e.outcome : `${e.status}${e.errcode ? ` ${e.errcode}` : ""}`;
      log.write(
        "retry",
        `${actor} · ${e.method} ${readablePath(e.path)} → ${answer}; retry #${e.attempt} in ${e.delayMs} ms`,
      );
    }),
    events.on("crypto.requestFailed", (e) => {
      log.write(
        "warn",
        `${actor} · crypto request ${e.kind} failed (sent again later): ${describeError(e.error)}`,
      );
    }),
    events.on("crypto.retryScheduled", (e) => {
      log.write("retry", `${actor} · crypto request loop runs again in ${e.delayMs} ms`);
    }),
  ];
  return () => {
    for (const stop of stops) stop();
  };
}

/** The `onRetry` of the demo's own calls: the same line as the SDK's, marked as the app's. */
export function appRetryLogger(log: LogPanel, actor: string, counter: RetryCounter) {
  return (e: RetryNotice): void => {
    counter.app++;
    const answer = e.status === undefined ? "network error" : `${e.status} ${e.errcode ?? ""}`.trim();
    log.write(
      "retry",
      `${actor} · ${e.method} ${readablePath(e.path)} → ${answer}; retry #${e.attempt} in ${e.delayMs} ms (app call)`,
    );
  };
}

/** `/_matrix/client/v3/join/%21a%3Alocalhost` → `join/!a:localhost`. */
function readablePath(fullPath: string): string {
  const short = shortPath(fullPath);
  try {
    return decodeURIComponent(short);
  } catch {
    return short;
  }
}
