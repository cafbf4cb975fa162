import {
  createMockHomeserver,
  DEHYDRATED_DEVICE_PATH,
  type MockHomeserver,
  type Profile,
  type ProfileName,
  profiles,
} from "matrix-e2ee-devices/testing";

/**
 * The homeserver of the demo: the package's mock, running in this page. The SDK reaches it through
 * its in-process `fetch`, so no request leaves the tab and no server process is needed.
 */

export const PROFILE_NAMES = Object.keys(profiles) as ProfileName[];

export function startEmbeddedServer(profile: ProfileName): MockHomeserver {
  return createMockHomeserver({ profile, serverName: "localhost" });
}

/** How this profile serves dehydrated-device events, in one line (MSC3814 wire variants). */
export function describeDehydration(profile: Profile): string {
  const methods = [
    profile.dehydratedEventsGet ? "GET ?from=" : undefined,
    profile.dehydratedEventsPost ? "POST {next_batch}" : undefined,
  ].filter((m) => m !== undefined);
  return `dehydrated-device events by ${methods.join(" or ")}, pages of ${profile.dehydratedEventsPageSize}`;
}

export interface FaultKnobs {
  latencyMs: number;
  /** 0–100: share of requests answered 500 `M_UNKNOWN`. */
  serverErrorPercent: number;
  /** 0–100: share answered 429 `M_LIMIT_EXCEEDED` with `retry_after_ms`. */
  rateLimitPercent: number;
}

/** Through the mock's control API: control calls themselves are never delayed or faulted. */
export function applyFaults(hs: MockHomeserver, knobs: FaultKnobs): void {
  hs.control.setFaults({
    latencyMs: knobs.latencyMs,
    serverErrorRate: knobs.serverErrorPercent / 100,
    rateLimitRate: knobs.rateLimitPercent / 100,
    retryAfterMs: 300,
  });
}

/** The next `times` requests for dehydrated-device events get 429 with `retry_after_ms`. */
export function failNextEventsRequests(hs: MockHomeserver, times: number): void {
  hs.control.scriptFailure({
    path: `${DEHYDRATED_DEVICE_PATH}/{deviceId}/events`,
    times,
    status: 429,
    errcode: "M_LIMIT_EXCEEDED",
    error: "Too many requests (injected by the demo)",
    retryAfterMs: 400,
  });
}

export interface ServerStats {
  requests: number;
  faults: number;
}

export function serverStats(hs: MockHomeserver): ServerStats {
  const log = hs.control.requestLog();
  return { requests: log.length, faults: log.filter((e) => e.fault !== undefined).length };
}
