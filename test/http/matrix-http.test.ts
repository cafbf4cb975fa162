import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { isSdkError } from "../../src/errors/sdk-error.js";
import { createMatrixHttp, type MatrixHttpEvents } from "../../src/http/matrix-http.js";
import { matrixPath } from "../../src/http/path.js";
import { whoamiResponseSchema } from "../../src/http/schemas/whoami.js";
import { ManualClock } from "../../src/testing/manual-clock.js";
import { json, ScriptedFetch } from "./scripted-fetch.js";
import { observe, rejection, setup, TOKEN } from "./support.js";

const whoami = {
  method: "GET",
  path: "/_matrix/client/v3/account/whoami",
  schema: whoamiResponseSchema,
} as const;
const me = () => json(200, { user_id: "@alice:hs.example", device_id: "ABC" });
const versionsBody = () =>
  json(200, { versions: ["v1.11", "v1.12"], unstable_features: { "org.matrix.msc3814": true } });
const softLogout = () => json(401, { errcode: "M_UNKNOWN_TOKEN", error: "Token expired", soft_logout: true });
const hardLogout = () => json(401, { errcode: "M_UNKNOWN_TOKEN", error: "Invalid token" });

/** Every test here also proves that nothing it did ended in an unhandled rejection. */
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeEach(() => {
  unhandled.length = 0;
  process.on("unhandledRejection", onUnhandled);
});
afterEach(async () => {
  await new Promise((r) => setTimeout(r, 0));
  process.off("unhandledRejection", onUnhandled);
  expect(unhandled).toEqual([]);
});

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function recordEvents(http: ReturnType<typeof setup>["http"]) {
  const seen: string[] = [];
  for (const name of ["softLogout", "loggedOut", "tokenRefreshed", "tokenRefreshFailed"] as const) {
    http.events.on(name, () => seen.push(name));
  }
  return seen;
}

describe("the transport", () => {
  it("sends the token as a bearer header, the body as JSON and the query as parameters", async () => {
    const { http, server } = setup({ baseUrl: "https://hs.example/prefix/" });
    server.push(json(200, {}));
    const deviceId = "dEv/ice+1";
    await http.request({
      method: "PUT",
      path: matrixPath`/_matrix/client/v3/sendToDevice/${"m.room.encrypted"}/${"txn1"}`,
      query: { user_id: "@bot:hs.example", skipped: undefined, flag: true },
      body: { messages: { "@bob:hs.example": { [deviceId]: { a: 1 } } } },
      schema: z.looseObject({}),
    });
    const call = server.calls[0]!;
    expect(call.method).toBe("PUT");
    expect(call.url.href).toBe(
      "https://hs.example/prefix/_matrix/client/v3/sendToDevice/m.room.encrypted/txn1?user_id=%40bot%3Ahs.example&flag=true",
    );
    expect(call.authorization).toBe(`Bearer ${TOKEN}`);
    expect(JSON.parse(call.body)).toEqual({ messages: { "@bob:hs.example": { "dEv/ice+1": { a: 1 } } } });
  });

  it("sends {} for a POST without a body, and no body for a GET", async () => {
    const { http, server } = setup();
    server.push(json(200, {}), me());
    await http.request({ method: "POST", path: "/_matrix/client/v3/keys/upload", schema: z.unknown() });
    await http.request(whoami);
    expect(server.calls.map((c) => c.body)).toEqual(["{}", ""]);
  });

  it("omits the token on unauthenticated requests and uses a replaced token afterwards", async () => {
    const { http, server } = setup();
    server.push(json(200, { user_id: "@a:hs.example", access_token: "x", device_id: "D" }), me(), me());
    await http.request({
      method: "POST",
      path: "/_matrix/client/v3/login",
      body: {},
      schema: z.unknown(),
      unauthenticated: true,
    });
    http.setAccessToken("syt_other_token_value");
    await http.request(whoami);
    http.setAccessToken(undefined);
    await http.request(whoami);
    expect(server.calls.map((c) => c.authorization)).toEqual([null, "Bearer syt_other_token_value", null]);
    expect(http.hasAccessToken()).toBe(false);
  });

  it("refuses a base URL that is not absolute http(s)", () => {
    for (const baseUrl of ["hs.example", "ftp://hs.example"]) {
      let caught: unknown;
      try {
        createMatrixHttp({ baseUrl, clock: new ManualClock(), fetch: new ScriptedFetch().fetch });
      } catch (err) {
        caught = err;
      }
      expect(isSdkError(caught) && caught.code).toBe("invalid_base_url");
    }
  });
});

describe("/versions", () => {
  it("is read once and cached, with concurrent callers sharing one request", async () => {
    const { http, server } = setup();
    server.push(versionsBody());
    const [a, b, c] = await Promise.all([http.getVersions(), http.getVersions(), http.getVersions()]);
    expect(a).toEqual({ versions: ["v1.11", "v1.12"], unstableFeatures: { "org.matrix.msc3814": true } });
    expect(b).toBe(a);
    expect(c).toBe(a);
    await expect(http.getVersions()).resolves.toBe(a);
    expect(server.calls).toHaveLength(1);
    expect(server.calls[0]!.path).toBe("/_matrix/client/versions");
  });

  it("does not cache a failure: every waiting caller sees it, the next call asks again", async () => {
    const { http, server } = setup();
    server.push(json(404, { errcode: "M_UNRECOGNIZED" }), versionsBody());
    const failures = await Promise.all([rejection(http.getVersions()), rejection(http.getVersions())]);
    expect(failures[0]).toBe(failures[1]);
    expect(failures[0]).toMatchObject({ errcode: "M_UNRECOGNIZED" });
    await expect(http.getVersions()).resolves.toMatchObject({ versions: ["v1.11", "v1.12"] });
    expect(server.calls).toHaveLength(2);
  });

  it("lets one caller stop waiting without cancelling the shared request", async () => {
    const { http, server, clock } = setup();
    const answer = deferred<Response>();
    server.push(() => answer.promise);
    const controller = new AbortController();
    const impatient = observe(http.getVersions({ signal: controller.signal }));
    const patient = observe(http.getVersions());
    await clock.advance(0);
    controller.abort();
    await impatient.result;
    expect(impatient.state).toMatchObject({ done: true, ok: false });
    answer.resolve(versionsBody());
    await patient.result;
    expect(patient.state).toMatchObject({ ok: true });
    expect(server.calls).toHaveLength(1);
  });
});

describe("soft logout and token refresh", () => {
  it("refreshes once for concurrent requests, replays each once with the new token, and emits events", async () => {
    const refreshed = deferred<string>();
    let refreshCalls = 0;
    const { http, server, clock } = setup({
      refreshToken: () => {
        refreshCalls++;
        return refreshed.promise;
      },
    });
    const seen = recordEvents(http);
    server.push(softLogout(), softLogout(), softLogout(), me(), me(), json(200, {}));
    const requests = [
      observe(http.request(whoami)),
      observe(http.request(whoami)),
      // A never-retried POST is replayed too: the server refused the token before acting on it.
      observe(
        http.request({
          method: "POST",
          path: "/_matrix/client/v3/keys/claim",
          body: {},
          schema: z.unknown(),
        }),
      ),
    ];
    await clock.advance(0);
    expect(server.calls).toHaveLength(3);
    expect(refreshCalls).toBe(1);
    refreshed.resolve("syt_new_token_after_refresh");
    await Promise.all(requests.map((r) => r.result));
    expect(requests.map((r) => r.state)).toMatchObject([{ ok: true }, { ok: true }, { ok: true }]);
    expect(refreshCalls).toBe(1);
    expect(server.calls.slice(3).map((c) => c.authorization)).toEqual(
      Array(3).fill("Bearer syt_new_token_after_refresh"),
    );
    expect(seen).toEqual(["softLogout", "tokenRefreshed"]);
  });

  it("uses a token refreshed meanwhile instead of refreshing again", async () => {
    let refreshCalls = 0;
    const { http, server, clock } = setup({
      refreshToken: async () => `syt_refreshed_${++refreshCalls}_value`,
    });
    const late = deferred<Response>();
    server.push(softLogout(), () => late.promise, me(), me());
    const first = observe(http.request(whoami));
    const second = observe(http.request(whoami));
    await clock.advance(0);
    // The first request has refreshed and been replayed; now the second one's old-token 401 lands.
    expect(first.state).toMatchObject({ ok: true });
    expect(second.state.done).toBe(false);
    late.resolve(softLogout());
    await Promise.all([first.result, second.result]);
    expect(first.state).toMatchObject({ ok: true });
    expect(second.state).toMatchObject({ ok: true });
    expect(refreshCalls).toBe(1);
  });

  it("without a refresh callback emits softLogout once and throws the MatrixApiError", async () => {
    const { http, server } = setup();
    const seen = recordEvents(http);
    server.push(softLogout(), softLogout());
    const errors = await Promise.all([rejection(http.request(whoami)), rejection(http.request(whoami))]);
    expect(errors).toMatchObject([
      { status: 401, errcode: "M_UNKNOWN_TOKEN", softLogout: true },
      { status: 401, errcode: "M_UNKNOWN_TOKEN", softLogout: true },
    ]);
    expect(seen).toEqual(["softLogout"]);
  });

  it("on a hard logout emits loggedOut once, throws, and never calls the refresh callback", async () => {
    let refreshCalls = 0;
    const { http, server } = setup({
      refreshToken: async () => {
        refreshCalls++;
        return "syt_unused";
      },
    });
    const payloads: MatrixHttpEvents["loggedOut"][] = [];
    http.events.on("loggedOut", (p) => payloads.push(p));
    server.push(hardLogout(), hardLogout());
    const errors = await Promise.all([rejection(http.request(whoami)), rejection(http.request(whoami))]);
    expect(errors).toMatchObject([{ softLogout: false }, { softLogout: false }]);
    expect(payloads).toEqual([{ method: "GET", path: "/_matrix/client/v3/account/whoami" }]);
    expect(refreshCalls).toBe(0);
  });

  it("when the refresh fails, fails every waiting request with the original 401 and emits tokenRefreshFailed", async () => {
    const { http, server } = setup({
      refreshToken: async () => {
        throw new Error("refresh token revoked");
      },
    });
    const seen = recordEvents(http);
    server.push(softLogout(), softLogout());
    const errors = await Promise.all([rejection(http.request(whoami)), rejection(http.request(whoami))]);
    expect(errors).toMatchObject([{ errcode: "M_UNKNOWN_TOKEN" }, { errcode: "M_UNKNOWN_TOKEN" }]);
    expect(seen).toEqual(["softLogout", "tokenRefreshFailed"]);
    expect(server.calls).toHaveLength(2);
  });

  it("tries the refresh again for a later request after a failed one", async () => {
    const outcomes = [Promise.reject(new Error("offline")), Promise.resolve("syt_second_try_token")];
    outcomes[0]!.catch(() => {});
    const { http, server } = setup({ refreshToken: () => outcomes.shift()! });
    server.push(softLogout(), softLogout(), me());
    await rejection(http.request(whoami));
    await expect(http.request(whoami)).resolves.toMatchObject({ user_id: "@alice:hs.example" });
    expect(server.calls.at(-1)!.authorization).toBe("Bearer syt_second_try_token");
  });

  it("does not refresh twice for one request: a second refusal is final", async () => {
    let refreshCalls = 0;
    const { http, server } = setup({ refreshToken: async () => `syt_attempt_${++refreshCalls}_token` });
    const seen = recordEvents(http);
    server.push(softLogout(), hardLogout());
    const error = await rejection(http.request(whoami));
    expect(error).toMatchObject({ errcode: "M_UNKNOWN_TOKEN", softLogout: false });
    expect(refreshCalls).toBe(1);
    expect(seen).toEqual(["softLogout", "tokenRefreshed", "loggedOut"]);
  });

  it("leaves an unauthenticated request's 401 alone", async () => {
    const { http, server } = setup({ refreshToken: async () => "syt_never" });
    const seen = recordEvents(http);
    server.push(hardLogout());
    await rejection(http.request({ ...whoami, unauthenticated: true }));
    expect(seen).toEqual([]);
  });
});
