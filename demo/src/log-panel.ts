import type { Logger } from "matrix-e2ee-devices";

export type LogKind = "step" | "info" | "ok" | "retry" | "warn" | "error" | "sdk";

/**
 * The visible log. It receives only text the demo writes, plus what the SDK's logger says — never a
 * key, recovery key, password or access token (the browser test checks the panel's text for them).
 * Nothing here scrubs secrets: a leak must show up, not be hidden.
 */
export class LogPanel {
  readonly #list: HTMLOListElement;
  #startedAt = performance.now();

  constructor(list: HTMLOListElement) {
    this.#list = list;
  }

  /** `fromSdk` marks the SDK's own logger output, which the page hides unless asked. */
  write(kind: LogKind, text: string, fromSdk = false): void {
    const item = document.createElement("li");
    item.className = `log-${kind}${fromSdk ? " from-sdk" : ""}`;
    const time = document.createElement("time");
    time.textContent = `${((performance.now() - this.#startedAt) / 1000).toFixed(2)}s`;
    const message = document.createElement("span");
    message.textContent = text;
    item.append(time, message);
    this.#list.append(item);
    // Scrolls the panel only; `scrollIntoView` would scroll the whole page along.
    this.#list.scrollTop = this.#list.scrollHeight;
  }

  clear(): void {
    this.#list.replaceChildren();
    this.#startedAt = performance.now();
  }

  /**
   * The SDK's logger for one actor ("Alice", "Bob", …), as an app would pass its own: info and above
   * land in the panel, marked as the SDK's words (`logger.warn`) apart from the demo's lines, which
   * tell the same story from the SDK's events.
   */
  sdkLogger(actor: string): Logger {
    const line =
      (kind: LogKind, level: string) =>
      (...args: unknown[]) =>
        this.write(kind, `${actor} · logger.${level} · ${formatArgs(args)}`, true);
    return {
      debug() {},
      info: line("sdk", "info"),
      warn: line("warn", "warn"),
      error: line("error", "error"),
    };
  }
}

/** One readable line from logger arguments; errors by name, code and message. */
export function formatArgs(args: readonly unknown[]): string {
  return args.map(formatValue).join(" ");
}

export function formatValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return describeError(value);
  try {
    const json = JSON.stringify(value);
    return json === undefined ? String(value) : json.length > 200 ? `${json.slice(0, 200)}…` : json;
  } catch {
    return String(value);
  }
}

/** `MatrixApiError [M_LIMIT_EXCEEDED, 429]: …`: what an app would show a developer. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { code, errcode, status } = error as { code?: unknown; errcode?: unknown; status?: unknown };
  const tags = [code, errcode, status].filter((t) => typeof t === "string" || typeof t === "number");
  return `${error.name}${tags.length > 0 ? ` [${tags.join(", ")}]` : ""}: ${error.message}`;
}
