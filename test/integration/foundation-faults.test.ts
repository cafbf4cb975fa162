import { UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { beforeEach, describe, expect, it } from "vitest";
import { claimMissingSessions } from "../../src/crypto/claim-sessions.js";
import { ManualClock } from "../../src/testing/manual-clock.js";
import { createAccount, nextEvent, useFoundationSetup } from "./support/foundation-fixtures.js";

/**
 * The facade under injected faults, over a real socket: the transport waits as long as a
 * rate-limited server asks and backs off on server errors (on a manual clock, so the test checks
 * each wait exactly), and a `keys/claim` whose response is lost is never sent again on its own.
 */

const setup = useFoundationSetup();
const { watch, open } = setup;

beforeEach(() => setup.server.homeserver.control.reset());

/** What the mock answered to each `method path` request since the last reset, in order. */
function outcomes(method: string, path: string): (number | "dropped" | null)[] {
  return setup.server.homeserver.control
    .requestLog()
    .filter((e) => e.method === method && e.path === path)
    .map((e) => (e.dropped ? "dropped" : e.status));
}

describe("the client under injected faults", () => {
  it("waits exactly as long as a 429 asks, backs off after a 5xx, and then succeeds", async () => {
    const clock = new ManualClock();
    const carol = await open(createAccount(setup.server, "carol"), { clock, random: () => 0.5 });
    const failures: unknown[] = [];
    carol.events.on("requestFailed", (e) => failures.push(e.error));
    const control = setup.server.homeserver.control;
    // 2 s both ways: the mock sends `retry_after_ms` and a whole-second `Retry-After`.
    control.scriptFailure({ method: "POST", path: "/_matrix/client/v3/keys/upload", retryAfterMs: 2000 });
    control.scriptFailure({ method: "POST", path: "/_matrix/client/v3/keys/upload", status: 503 });

    const rateLimited = nextEvent(carol, "requestRetried");
    const done = carol.processOutgoingRequests();
    expect(await rateLimited).toMatchObject({
      path: "/_matrix/client/v3/keys/upload",
      status: 429,
      errcode: "M_LIMIT_EXCEEDED",
      outcome: "rate-limited",
      delayMs: 2000,
    });
    await clock.advance(1999);
    expect(outcomes("POST", "/_matrix/client/v3/keys/upload")).toEqual([429]);

    const serverError = nextEvent(carol, "requestRetried");
    await clock.advance(1);
    // Backoff with full jitter: random 0.5 of min(cap, 500 ms · 2^(2-1)).
    expect(await serverError).toMatchObject({ status: 503, outcome: "transient", delayMs: 500, attempt: 2 });
    await clock.advance(500);
    await done;

    expect(outcomes("POST", "/_matrix/client/v3/keys/upload")).toEqual([429, 503, 200]);
    expect(failures).toEqual([]);
    expect(setup.server.homeserver.state.keys.oneTimeKeyCounts(carol.userId, carol.deviceId)).toEqual({
      signed_curve25519: 50,
    });
  });

  it("gets through seeded random 429s and 5xx for every request that is safe to repeat", async () => {
    const dana = await open(createAccount(setup.server, "dana"), {
      // Real time but tiny waits: the faults say "come back in 0 ms".
      retry: { baseDelayMs: 1, maxDelayMs: 4, maxAttempts: 10 },
    });
    const failures: unknown[] = [];
    dana.events.on("requestFailed", (e) => failures.push(e.error));
    setup.server.homeserver.control.setFaults({
      rateLimitRate: 0.2,
      serverErrorRate: 0.2,
      retryAfterMs: 0,
      seed: 7,
    });

    await dana.processOutgoingRequests();
    const created = await dana.secretStorage.createKey();
    watch.secret(created.recoveryKey);
    await dana.secretStorage.store("org.example.secret", "it works", created);
    const unlocked = await dana.secretStorage.unlockWithRecoveryKey(created.recoveryKey);
    expect(await dana.secretStorage.get("org.example.secret", unlocked)).toBe("it works");

    const log = setup.server.homeserver.control.requestLog();
    expect(log.filter((e) => e.fault === "random" && e.status === 429).length).toBeGreaterThan(0);
    expect(log.filter((e) => e.fault === "random" && e.status === 500).length).toBeGreaterThan(0);
    expect(failures).toEqual([]);
    expect(setup.server.homeserver.state.keys.oneTimeKeyCounts(dana.userId, dana.deviceId)).toEqual({
      signed_curve25519: 50,
    });
  });

  it("never replays a keys/claim whose response was lost, even with retries on", async () => {
    const fast = { retry: { baseDelayMs: 1, maxDelayMs: 4 } };
    const erin = await open(createAccount(setup.server, "erin"), fast);
    const frank = await open(createAccount(setup.server, "frank"), fast);
    await Promise.all([erin.processOutgoingRequests(), frank.processOutgoingRequests()]);
    await erin.machine.updateTrackedUsers([new UserId(frank.userId)]);
    await erin.processOutgoingRequests();
    const keysBefore = setup.server.homeserver.state.keys.oneTimeKeyCounts(frank.userId, frank.deviceId)
      .signed_curve25519!;
    setup.server.homeserver.control.clearRequestLog();

    setup.server.homeserver.control.scriptFailure({
      method: "POST",
      path: "/_matrix/client/v3/keys/claim",
      when: "after",
      drop: true,
    });
    const error = await watch.rejection(claimMissingSessions(erin.machine, erin.http, [frank.userId]));
    expect(error).toMatchObject({ name: "NetworkError" });
    // Let any replay the transport might have scheduled show up before looking.
    await new Promise((r) => setTimeout(r, 50));

    expect(outcomes("POST", "/_matrix/client/v3/keys/claim")).toEqual(["dropped"]);
    expect(
      setup.server.homeserver.state.keys.oneTimeKeyCounts(frank.userId, frank.deviceId).signed_curve25519,
    ).toBe(keysBefore - 1);

    // Asking again is a deliberate, fresh claim.
    expect(await claimMissingSessions(erin.machine, erin.http, [frank.userId])).toBe(true);
    expect(outcomes("POST", "/_matrix/client/v3/keys/claim")).toEqual(["dropped", 200]);
  });

  it("never wrote an access token or a recovery key to the log or into an error", () => {
    expect(watch.lines.some((l) => l.includes("retrying"))).toBe(true);
    watch.expectNoLeaks();
  });
});
