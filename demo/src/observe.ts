import type { E2eeClientEvents, MatrixHttpEvents, TypedEmitter } from "matrix-e2ee-devices";
import { describeError, type LogPanel } from "./log-panel.js";

/**
 * What an app would surface from the SDK's events: retries of the transport (the knobs of the
 * embedded server make them happen) and background failures of the crypto request loop. Payloads
 * carry methods, paths and codes, never tokens or keys.
 */

export interface RetryCounter {
  retries: number;
}

export function watchTransport(
  events: TypedEmitter<MatrixHttpEvents>,
  log: LogPanel,
  actor: string,
  counter: RetryCounter,
): void {
  events.on("requestRetried", retryLogger(log, actor, counter));
}

export function watchClient(
  events: TypedEmitter<E2eeClientEvents>,
  log: LogPanel,
  actor: string,
  counter: RetryCounter,
): void {
  events.on("requestRetried", retryLogger(log, actor, counter));
  events.on("requestFailed", (e) => {
    log.write(
      "warn",
      `${actor} · crypto request ${e.kind} failed (sent again later): ${describeError(e.error)}`,
    );
  });
  events.on("retryScheduled", (e) => {
    log.write("retry", `${actor} · crypto request loop runs again in ${e.delayMs} ms`);
  });
}

function retryLogger(log: LogPanel, actor: string, counter: RetryCounter) {
  return (e: MatrixHttpEvents["requestRetried"]) => {
    counter.retries++;
    const answer = e.status === undefined ? e.outcome : `${e.status}${e.errcode ? ` ${e.errcode}` : ""}`;
    log.write(
      "retry",
      `${actor} · ${e.method} ${shortPath(e.path)} → ${answer}; retry #${e.attempt} in ${e.delayMs} ms`,
    );
  };
}

/** `/_matrix/client/v3/keys/upload` → `keys/upload`: the log is for people. */
export function shortPath(path: string): string {
  return path.replace(/^\/_matrix\/client\/(v3|r0|unstable\/[^/]+)\//, "");
}
