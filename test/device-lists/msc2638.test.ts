import { describe, expect, it } from "vitest";
import {
  advertisesMsc2638,
  classifyRefreshError,
  MSC2638_FEATURE,
  Msc2638Client,
} from "../../src/device-lists/msc2638.js";
import { NetworkError } from "../../src/errors/network-error.js";
import { apiError, FakeMatrixHttp } from "../crypto/support/fake-matrix-http.js";

/**
 * The MSC2638 call: feature detection from `/versions`, the stable path then the unstable one,
 * 404 `M_UNRECOGNIZED` on every path ending it for the session, and 429 reported with the server's
 * `retry_after_ms`.
 */

const DAVE = "@dave:remote.example";
const STABLE = /^\/user\/[^/]+\/devices\/refresh$/;
const UNSTABLE = /^\/_matrix\/client\/unstable\/org\.matrix\.msc2638\/user\/[^/]+\/devices\/refresh$/;

function client(features: Record<string, boolean>, fake = new FakeMatrixHttp()) {
  let versionCalls = 0;
  const http = {
    request: fake.request.bind(fake),
    getVersions: async () => {
      versionCalls++;
      return { versions: ["v1.12"], unstableFeatures: features };
    },
  };
  return {
    msc: new Msc2638Client({ http, signal: new AbortController().signal }),
    fake,
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
    const { msc, fake } = client({ [MSC2638_FEATURE]: true });
    fake.on("POST", STABLE, (c) => {
      throw apiError("POST", c.path, 429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 2_500 }, 2_500);
    });
    expect(await msc.refresh(DAVE)).toMatchObject({ kind: "rate_limited", retryAfterMs: 2_500 });
    fake.on("POST", STABLE, (c) => {
      throw apiError("POST", c.path, 503, {});
    });
    expect(await msc.refresh(DAVE)).toMatchObject({ kind: "failed" });
  });
});
