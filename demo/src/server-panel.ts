import type { ProfileName } from "matrix-e2ee-devices/testing";
import type { DemoContext } from "./context.js";
import { byId, element } from "./dom.js";
import {
  applyFaults,
  describeDehydration,
  type FaultKnobs,
  failNextEventsRequests,
  PROFILE_NAMES,
  serverStats,
} from "./embedded-server.js";

/**
 * The embedded server's controls: which real server it plays (a profile), and latency and faults
 * through the mock's control API, so the SDK's retries show up in the log.
 */
export class ServerPanel {
  readonly #profile = byId("profile", HTMLSelectElement);
  readonly #latency = byId("latency", HTMLInputElement);
  readonly #errorRate = byId("error-rate", HTMLInputElement);
  readonly #rateLimit = byId("rate-limit", HTMLInputElement);
  readonly #summary = byId("profile-summary", HTMLParagraphElement);
  readonly #stats = byId("server-stats", HTMLParagraphElement);
  #ctx: DemoContext | undefined;

  constructor(options: { onProfileChange: (profile: ProfileName) => void }) {
    this.#profile.replaceChildren(...PROFILE_NAMES.map((name) => element("option", name)));
    this.#profile.addEventListener("change", () => options.onProfileChange(this.profile));
    for (const input of [this.#latency, this.#errorRate, this.#rateLimit]) {
      input.addEventListener("input", () => this.#showKnobs());
      input.addEventListener("change", () => this.#apply(true));
    }
    byId("fail-events", HTMLButtonElement).addEventListener("click", () => {
      if (this.#ctx === undefined) return;
      failNextEventsRequests(this.#ctx.hs, 2);
      this.#ctx.log.write(
        "info",
        "server: the next 2 dehydrated-events requests will get 429 M_LIMIT_EXCEEDED",
      );
    });
    this.#showKnobs();
    setInterval(() => this.#showStats(), 500);
  }

  get profile(): ProfileName {
    return this.#profile.value as ProfileName;
  }

  /** Points the panel at a fresh server and gives it the current knob settings. */
  attach(ctx: DemoContext): void {
    this.#ctx = ctx;
    const description = describeDehydration(ctx.hs.profile);
    this.#summary.textContent = `${this.profile}: ${description}.`;
    ctx.log.write("info", `embedded homeserver started as ${this.profile} (${description})`);
    this.#apply(false);
    this.#showStats();
  }

  #knobs(): FaultKnobs {
    return {
      latencyMs: this.#latency.valueAsNumber,
      serverErrorPercent: this.#errorRate.valueAsNumber,
      rateLimitPercent: this.#rateLimit.valueAsNumber,
    };
  }

  #showKnobs(): void {
    const knobs = this.#knobs();
    byId("latency-value", HTMLOutputElement).value = `${knobs.latencyMs} ms`;
    byId("error-rate-value", HTMLOutputElement).value = `${knobs.serverErrorPercent} %`;
    byId("rate-limit-value", HTMLOutputElement).value = `${knobs.rateLimitPercent} %`;
  }

  #apply(announce: boolean): void {
    const ctx = this.#ctx;
    if (ctx === undefined) return;
    const knobs = this.#knobs();
    applyFaults(ctx.hs, knobs);
    if (announce) {
      ctx.log.write(
        "info",
        `server: latency ${knobs.latencyMs} ms, ${knobs.serverErrorPercent} % answered 500, ` +
          `${knobs.rateLimitPercent} % answered 429`,
      );
    }
  }

  #showStats(): void {
    const ctx = this.#ctx;
    if (ctx === undefined) return;
    const stats = serverStats(ctx.hs);
    this.#stats.textContent =
      `${stats.requests} requests handled · ${stats.faults} faults injected · ` +
      `${ctx.retries.sdk + ctx.retries.app} retries (${ctx.retries.sdk} by the SDK, ${ctx.retries.app} by the app)`;
  }
}
