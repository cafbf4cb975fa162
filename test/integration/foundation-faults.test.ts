import { UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { describe, expect, it } from "vitest";
import { clientInternals } from "../../src/client.js";
import { claimMissingSessions } from "../../src/crypto/claim-sessions.js";
import { defaultRetryConfig } from "../../src/http/retry-policy.js";
import { ManualClock } from "../../src/testing/manual-clock.js";
import { inClient, inThreadClient, itInThread } from "./support/client-mode.js";
import { createAccount, nextEvent, useFoundationSetup } from "./support/foundation-fixtures.js";

/**
 * The facade under injected faults, over a real socket: the transport waits as long as a
 * rate-limited server asks and backs off on server errors (on a manual clock, so the test checks
 * each wait exactly), and a `keys/claim` whose response is lost is never sent again on its own.
 * Each test has its own server (and so its own request log and faults); after each, the setup
 * checks that no token or recovery key reached a log, an error or an event.
 */

const setup = useFoundationSetup();

/** What the mock answered to each `method path` request of this test, in order. */
function outcomes(method: string, path: string): (number | "dropped" | null)[] {
  return setup.server.homeserver.control
    .requestLog()
    .filter((e) => e.method === method && e.path === path)
    .map((e) => (e.dropped ? "dropped" : e.status));
}

describe("the client under injected faults", () => {
  itInThread("advances the client's ManualClock")(
    "waits exactly as long as a 429 asks, backs off after a 5xx, and then succeeds",
    async () => {
      const clock = new ManualClock();
      const carol = await setup.open(createAccount(setup.server, "carol"), { clock, random: () => 0.5 });
      const failures: unknown[] = [];
      carol.events.on("crypto.requestFailed", (e) => failures.push(e.error));
      const control = setup.server.homeserver.control;
      // 2 s both ways: the mock sends `retry_after_ms` and a whole-second `Retry-After`.
      control.scriptFailure({ method: "POST", path: "/_matrix/client/v3/keys/upload", retryAfterMs: 2000 });
      control.scriptFailure({ method: "POST", path: "/_matrix/client/v3/keys/upload", status: 503 });

      const rateLimited = nextEvent(carol, "http.requestRetried");
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

      const serverError = nextEvent(carol, "http.requestRetried");
      await clock.advance(1);
      // Backoff with full jitter: random 0.5 of min(cap, 500 ms · 2^(2-1)).
      expect(await serverError).toMatchObject({
        status: 503,
        outcome: "transient",
        delayMs: 500,
        attempt: 2,
      });
      await clock.advance(500);
      await done;

      expect(outcomes("POST", "/_matrix/client/v3/keys/upload")).toEqual([429, 503, 200]);
      expect(failures).toEqual([]);
      expect(setup.server.homeserver.state.keys.oneTimeKeyCounts(carol.userId, carol.deviceId)).toEqual({
        signed_curve25519: 50,
      });
      // Both retries were logged (and the leak check after the test reads those lines).
      expect(setup.watch.lines.filter((l) => l.includes("retrying"))).toHaveLength(2);
    },
  );

  it("gets through seeded random 429s and 5xx for every request that is safe to repeat", async () => {
    const dana = await setup.open(createAccount(setup.server, "dana"), {
      // Real time but tiny waits: the faults say "come back in 0 ms".
      retry: { baseDelayMs: 1, maxDelayMs: 4, maxAttempts: 10 },
    });
    const failures: unknown[] = [];
    dana.events.on("crypto.requestFailed", (e) => failures.push(e.error));
    setup.server.homeserver.control.setFaults({
      rateLimitRate: 0.2,
      serverErrorRate: 0.2,
      retryAfterMs: 0,
      seed: 7,
    });

    await dana.processOutgoingRequests();
    const created = await dana.secretStorage.createKey();
    setup.watch.secret(created.recoveryKey);
    // A secret of the app's own round-trips through account data: `store`/`get` of an arbitrary
    // secret are not on the face (it stores only what its own flows need).
    await inClient(dana, "storeSecret", created.recoveryKey, "org.example.secret", "it works");
    await dana.secretStorage.unlockWithRecoveryKey(created.recoveryKey);
    expect(await inClient(dana, "getSecret", created.recoveryKey, "org.example.secret")).toBe("it works");

    const log = setup.server.homeserver.control.requestLog();
    expect(log.filter((e) => e.fault === "random" && e.status === 429).length).toBeGreaterThan(0);
    expect(log.filter((e) => e.fault === "random" && e.status === 500).length).toBeGreaterThan(0);
    expect(failures).toEqual([]);
    expect(setup.server.homeserver.state.keys.oneTimeKeyCounts(dana.userId, dana.deviceId)).toEqual({
      signed_curve25519: 50,
    });
  });

  itInThread("reads the client's ManualClock (pendingSleeps, advance) and its transport (clientInternals)")(
    "never replays a keys/claim whose response was lost, even with retries on",
    async () => {
      // Default retries, on a manual clock: a replay could only be a retry waiting on this clock.
      const clock = new ManualClock();
      const erin = inThreadClient(await setup.open(createAccount(setup.server, "erin"), { clock }));
      const frank = await setup.open(createAccount(setup.server, "frank"));
      await Promise.all([erin.processOutgoingRequests(), frank.processOutgoingRequests()]);
      await erin.olmMachine.updateTrackedUsers([new UserId(frank.userId)]);
      await erin.processOutgoingRequests();
      const keysBefore = setup.server.homeserver.state.keys.oneTimeKeyCounts(frank.userId, frank.deviceId)
        .signed_curve25519!;
      const control = setup.server.homeserver.control;
      control.clearRequestLog();
      // Claiming is not on the face (an app claims with its own calls): the client's own transport,
      // whose retry policy is what this test is about.
      const erinHttp = clientInternals(erin).http;

      control.scriptFailure({
        method: "POST",
        path: "/_matrix/client/v3/keys/claim",
        when: "after",
        drop: true,
      });
      const retried: unknown[] = [];
      erin.events.on("http.requestRetried", (e) => retried.push(e));
      const claim = setup.watch.rejection(claimMissingSessions(erin.olmMachine, erinHttp, [frank.userId]));
      // A retry would announce itself before waiting on the clock: fail then rather than hang.
      const first = await Promise.race([
        claim.then(() => "settled"),
        nextEvent(erin, "http.requestRetried").then(() => "retry scheduled"),
      ]);
      expect(first).toBe("settled");
      const error = await claim;
      expect(error).toMatchObject({ name: "NetworkError" });

      // The transport settled with the failure and left nothing waiting on its clock; moving the
      // clock past every retry window the policy allows sends nothing more.
      expect(clock.pendingSleeps).toBe(0);
      const logged = control.requestLog().length;
      await clock.advance(defaultRetryConfig.maxAttempts * defaultRetryConfig.maxServerWaitMs);
      expect(control.requestLog()).toHaveLength(logged);
      expect(retried).toEqual([]);
      expect(outcomes("POST", "/_matrix/client/v3/keys/claim")).toEqual(["dropped"]);
      expect(
        setup.server.homeserver.state.keys.oneTimeKeyCounts(frank.userId, frank.deviceId).signed_curve25519,
      ).toBe(keysBefore - 1);

      // Asking again is a deliberate, fresh claim.
      expect(await claimMissingSessions(erin.olmMachine, erinHttp, [frank.userId])).toBe(true);
      expect(outcomes("POST", "/_matrix/client/v3/keys/claim")).toEqual(["dropped", 200]);
    },
  );
});
