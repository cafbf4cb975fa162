import { describe, expect, it } from "vitest";
import {
  advertisesMsc2638,
  classifyRefreshError,
  MSC2638_FEATURE,
  Msc2638Client,
} from "../../src/device-lists/msc2638.js";
import { NetworkError } from "../../src/errors/network-error.js";
import { ManualClock } from "../../src/testing/manual-clock.js";
import { apiError, FakeMatrixHttp } from "../crypto/support/fake-matrix-http.js";

/**
 * The MSC2638 call: feature detection from `/versions`, the stable path then the unstable one,
 * no path there (404/405, by status) on every one ending it for the session, and 429 reported with
 * the server's `retry_after_ms` and waited out by every refresh after it.
 */

const DAVE = "@dave:remote.example";
const STABLE = /^\/user\/[^/]+\/devices\/refresh$/;
const UNSTABLE = /^\/_matrix\/client\/unstable\/org\.matrix\.msc2638\/user\/[^/]+\/devices\/refresh$/;

function client(features: Record<string, boolean>, fake = new FakeMatrixHttp(), clock = new ManualClock()) {
  let versionCalls = 0;
  const http = {
    request: fake.request.bind(fake),
    getVersions: async () => {
      versionCalls++;
      return { versions: ["v1.12"], unstableFeatures: features };
    },
  };
  return {
    msc: new Msc2638Client({ http, clock, signal: new AbortController().signal }),
    fake,
    clock,
    versions: () => versionCalls,
  };
}

const unrecognized = (path: string) =>
  apiError("POST", path, 404, { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" });

describe("classifyRefreshError", () => {
  it.each<[string, unknown, string]>([
    ["404 M_UNRECOGNIZED", unrecognized("/x"), "unrecognized"],
    ["a proxy's bare 404", apiError("POST", "/x", 404, {}), "unrecognized"],
    ["405 M_UNRECOGNIZED", apiError("POST", "/x", 405, { errcode: "M_UNRECOGNIZED" }), "unrecognized"],
    ["a bare 405", apiError("POST", "/x", 405, {}), "unrecognized"],
    ["405 with another errcode", apiError("POST", "/x", 405, { errcode: "M_UNKNOWN" }), "unrecognized"],
    ["404 with another errcode", apiError("POST", "/x", 404, { errcode: "M_UNKNOWN" }), "unrecognized"],
    [
      "404 M_NOT_FOUND (a user the server does not know)",
      apiError("POST", "/x", 404, { errcode: "M_NOT_FOUND" }),
      "failed",
    ],
    ["429", apiError("POST", "/x", 429, { errcode: "M_LIMIT_EXCEEDED" }, 2_000), "rate_limited"],
    ["400 M_INVALID_PARAM", apiError("POST", "/x", 400, { errcode: "M_INVALID_PARAM" }), "failed"],
    ["502", apiError("POST", "/x", 502, {}), "failed"],
    ["a network error", new NetworkError("POST", "/x"), "failed"],
  ])("%s → %s", (_name, error, expected) => {
    expect(classifyRefreshError(error)).toBe(expected);
  });

  it("counts the flag only when exactly true", () => {
    expect(advertisesMsc2638({ unstableFeatures: { [MSC2638_FEATURE]: true } })).toBe(true);
    expect(advertisesMsc2638({ unstableFeatures: { [MSC2638_FEATURE]: false } })).toBe(false);
    expect(advertisesMsc2638({ unstableFeatures: {} })).toBe(false);
  });
});

describe("Msc2638Client", () => {
  it("is supported only where /versions advertises it, asked once", async () => {
    const on = client({ [MSC2638_FEATURE]: true });
    expect(await on.msc.supported()).toBe(true);
    expect(await on.msc.supported()).toBe(true);
    expect(on.versions()).toBe(1);
    const off = client({});
    expect(await off.msc.supported()).toBe(false);
  });

  it("asks the stable path with an empty body, not repeated by the transport", async () => {
    const { msc, fake } = client({ [MSC2638_FEATURE]: true });
    fake.on("POST", STABLE, () => ({}));
    expect(await msc.refresh(DAVE)).toEqual({ kind: "accepted" });
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]).toMatchObject({
      path: "/_matrix/client/v3/user/%40dave%3Aremote.example/devices/refresh",
      body: {},
      retry: "never",
    });
  });

  it("falls back to the unstable path once, then stays on it", async () => {
    const { msc, fake } = client({ [MSC2638_FEATURE]: true });
    fake.on("POST", STABLE, (c) => {
      throw unrecognized(c.path);
    });
    fake.on("POST", UNSTABLE, () => ({}));
    const answers = await Promise.all(
      ["@a:r.example", "@b:r.example", "@c:r.example"].map((u) => msc.refresh(u)),
    );
    expect(answers).toEqual([{ kind: "accepted" }, { kind: "accepted" }, { kind: "accepted" }]);
    // One probe of the stable path in all, not one per user.
    expect(fake.callsTo("POST", STABLE)).toHaveLength(1);
    expect(fake.callsTo("POST", UNSTABLE)).toHaveLength(3);
  });

  it("M_UNRECOGNIZED on every path: unsupported for the rest of the session", async () => {
    const { msc, fake } = client({ [MSC2638_FEATURE]: true });
    expect(await msc.refresh(DAVE)).toEqual({ kind: "unsupported" });
    expect(fake.calls).toHaveLength(2);
    expect(await msc.refresh(DAVE)).toEqual({ kind: "unsupported" });
    expect(await msc.supported()).toBe(false);
    expect(fake.calls).toHaveLength(2);
  });

  it("reports 429 with the server's retry_after_ms, and other failures as failed", async () => {
    const { msc, fake, clock } = client({ [MSC2638_FEATURE]: true });
    fake.on("POST", STABLE, (c) => {
      throw apiError("POST", c.path, 429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 2_500 }, 2_500);
    });
    expect(await msc.refresh(DAVE)).toMatchObject({ kind: "rate_limited", retryAfterMs: 2_500 });
    fake.on("POST", STABLE, (c) => {
      throw apiError("POST", c.path, 503, {});
    });
    const next = msc.refresh(DAVE);
    await clock.advance(2_500);
    expect(await next).toMatchObject({ kind: "failed" });
  });

  it("a bare 405 on the stable path moves on to the unstable one", async () => {
    const { msc, fake } = client({ [MSC2638_FEATURE]: true });
    fake.on("POST", STABLE, (c) => {
      throw apiError("POST", c.path, 405, {});
    });
    fake.on("POST", UNSTABLE, () => ({}));
    expect(await msc.refresh(DAVE)).toEqual({ kind: "accepted" });
    expect(await msc.refresh("@erin:remote.example")).toEqual({ kind: "accepted" });
    expect(fake.callsTo("POST", STABLE)).toHaveLength(1);
    expect(fake.callsTo("POST", UNSTABLE)).toHaveLength(2);
  });

  it("one probe while the path is unconfirmed; once it is accepted, every waiting refresh goes at once", async () => {
    const { msc, fake } = client({ [MSC2638_FEATURE]: true });
    let inFlight = 0;
    let peak = 0;
    const gates: (() => void)[] = [];
    fake.on("POST", STABLE, async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise<void>((resolve) => gates.push(resolve));
      inFlight--;
      return {};
    });
    const users = Array.from({ length: 100 }, (_, i) => `@u${i}:remote.example`);
    const answers = Promise.all(users.map((u) => msc.refresh(u)));
    await new Promise((r) => setTimeout(r, 0));
    // The first call probes alone.
    expect(fake.callsTo("POST", STABLE)).toHaveLength(1);
    gates.shift()?.();
    for (let i = 0; i < 5 && fake.callsTo("POST", STABLE).length < 100; i++) {
      await new Promise((r) => setTimeout(r, 0));
    }
    // The other 99 are all in flight together, not one after another.
    expect(fake.callsTo("POST", STABLE)).toHaveLength(100);
    expect(peak).toBe(99);
    for (const open of gates.splice(0)) open();
    expect((await answers).every((a) => a.kind === "accepted")).toBe(true);
  });

  it("a 429 holds every refresh until its wait is over: N users cost N + 1 requests, not 2N", async () => {
    const { msc, fake, clock } = client({ [MSC2638_FEATURE]: true });
    // The server limits every refresh for 4 s.
    const until = clock.now() + 4_000;
    fake.on("POST", STABLE, (c) => {
      const left = until - clock.now();
      if (left > 0) throw apiError("POST", c.path, 429, { errcode: "M_LIMIT_EXCEEDED" }, left);
      return {};
    });
    const users = ["@a:r.example", "@b:r.example", "@c:r.example", "@d:r.example"];
    const answers = users.map((u) => msc.refresh(u));
    expect(await answers[0]).toMatchObject({ kind: "rate_limited", retryAfterMs: 4_000 });
    // The first user asks again, as the caller does after a 429.
    const retried = msc.refresh(users[0] as string);
    await clock.advance(3_999);
    expect(fake.calls).toHaveLength(1);
    await clock.advance(1);
    expect(await Promise.all([...answers.slice(1), retried])).toEqual(
      users.map(() => ({ kind: "accepted" })),
    );
    expect(fake.calls).toHaveLength(users.length + 1);
  });

  it("once accepted, a 429 sends the calls one at a time again, each after the wait", async () => {
    const { msc, fake, clock } = client({ [MSC2638_FEATURE]: true });
    let calls = 0;
    fake.on("POST", STABLE, (c) => {
      calls++;
      if (calls === 2) throw apiError("POST", c.path, 429, { errcode: "M_LIMIT_EXCEEDED" }, 1_000);
      return {};
    });
    expect(await msc.refresh("@a:r.example")).toEqual({ kind: "accepted" });
    expect(await msc.refresh("@b:r.example")).toMatchObject({ kind: "rate_limited" });
    const later = [msc.refresh("@c:r.example"), msc.refresh("@d:r.example")];
    await clock.advance(999);
    expect(calls).toBe(2);
    await clock.advance(1);
    expect(await Promise.all(later)).toEqual([{ kind: "accepted" }, { kind: "accepted" }]);
    expect(calls).toBe(4);
  });
});
