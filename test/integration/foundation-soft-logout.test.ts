import { describe, expect, it } from "vitest";
import type { E2eeClientEvents } from "../../src/client-options.js";
import { createMatrixHttp } from "../../src/http/matrix-http.js";
import { loginResponseSchema, refreshResponseSchema } from "../../src/http/schemas/auth.js";
import { emptyResponseSchema } from "../../src/http/schemas/empty.js";
import type { TestClient } from "./support/client-mode.js";
import { type Account, createAccount, useFoundationSetup } from "./support/foundation-fixtures.js";

/**
 * Soft logout (spec "Soft logout") and token refresh through the facade, over a real socket: the
 * mock's `expireAccessToken` control makes the server refuse a token with `soft_logout: true`,
 * the app's refresh callback gets a new one from `POST /refresh`, and the refused request goes out
 * again with it. Each test has its own server and request log; after each, the setup checks that
 * no access or refresh token reached a log line, an error or an event.
 */

const setup = useFoundationSetup();

type Recorded = { [K in keyof E2eeClientEvents]: [K, E2eeClientEvents[K]] }[keyof E2eeClientEvents];

function record(client: TestClient): Recorded[] {
  const seen: Recorded[] = [];
  for (const name of [
    "http.softLogout",
    "http.loggedOut",
    "http.tokenRefreshed",
    "http.tokenRefreshFailed",
  ] as const) {
    client.events.on(name, (payload) => seen.push([name, payload] as Recorded));
  }
  return seen;
}

/**
 * A user logged in over the socket with `refresh_token: true` (spec v1.3+), as an app that can
 * refresh does; the device the control API created for the user stays unused.
 */
async function createRefreshableAccount(localpart: string): Promise<Account & { refreshToken: string }> {
  const created = createAccount(setup.server, localpart);
  const response = await createMatrixHttp({ baseUrl: setup.server.url }).request({
    method: "POST",
    path: "/_matrix/client/v3/login",
    body: {
      type: "m.login.password",
      identifier: { type: "m.id.user", user: created.userId },
      password: created.password,
      refresh_token: true,
    },
    schema: loginResponseSchema,
    unauthenticated: true,
  });
  if (response.refresh_token === undefined) throw new Error("the login returned no refresh token");
  return {
    userId: response.user_id,
    deviceId: response.device_id,
    accessToken: response.access_token,
    password: created.password,
    refreshToken: response.refresh_token,
  };
}

/** The app's side of refreshing: trade the refresh token at `POST /refresh`, keep the next one. */
function refresher(account: { refreshToken: string }) {
  const http = createMatrixHttp({ baseUrl: setup.server.url });
  const { watch } = setup;
  let refreshToken = account.refreshToken;
  watch.secret(refreshToken);
  const issued: string[] = [];
  const callback = async () => {
    const response = await http.request({
      method: "POST",
      path: "/_matrix/client/v3/refresh",
      body: { refresh_token: refreshToken },
      schema: refreshResponseSchema,
      unauthenticated: true,
    });
    refreshToken = response.refresh_token ?? refreshToken;
    watch.secret(refreshToken);
    watch.secret(response.access_token);
    issued.push(response.access_token);
    return response.access_token;
  };
  return { callback, issued };
}

const accountDataPath = (userId: string, type: string) =>
  `/_matrix/client/v3/user/${encodeURIComponent(userId)}/account_data/${type}`;

/** Requests the server refused for an expired token in this test, from the mock's request log. */
const refused = () =>
  setup.server.homeserver.control
    .requestLog()
    .filter((e) => e.status === 401 && e.errcode === "M_UNKNOWN_TOKEN")
    .map(({ method, path }) => ({ method, path }));

describe("soft logout and token refresh through the client", () => {
  it("refreshes an expired token, reports it, and replays the refused request with the new token", async () => {
    const account = await createRefreshableAccount("grace");
    const refresh = refresher(account);
    const grace = await setup.open(account, { refreshToken: refresh.callback });
    const events = record(grace);
    setup.server.homeserver.control.clearRequestLog();

    setup.server.homeserver.control.expireAccessToken(account.accessToken, { softLogout: true });
    // A GET of account data never set: the expected answer, after the refresh, is "no default key".
    expect(await grace.secretStorage.getDefaultKeyId()).toBeUndefined();

    const path = accountDataPath(grace.userId, "m.secret_storage.default_key");
    expect(events).toEqual([
      ["http.softLogout", { method: "GET", path }],
      ["http.tokenRefreshed", { method: "GET", path }],
    ]);
    expect(setup.watch.lines.some((l) => l.includes("soft logout; refreshing the access token"))).toBe(true);
    expect(refresh.issued).toHaveLength(1);
    expect(refused()).toEqual([{ method: "GET", path }]);
    // The replay reached the real route as grace, with the new token.
    const served = setup.server.homeserver.control
      .requestLog()
      .filter((e) => e.path === path && e.status !== 401);
    expect(served).toMatchObject([
      { method: "GET", userId: grace.userId, status: 404, errcode: "M_NOT_FOUND" },
    ]);
    expect(setup.server.homeserver.state.accounts.authenticate(refresh.issued[0]!)).toMatchObject({
      userId: grace.userId,
      deviceId: grace.deviceId,
    });
  });

  it("refreshes again when the new token expires during the crypto loop, replaying its POST once", async () => {
    const account = await createRefreshableAccount("heidi");
    const refresh = refresher(account);
    const heidi = await setup.open(account, { refreshToken: refresh.callback });
    const events = record(heidi);
    const failures: unknown[] = [];
    heidi.events.on("crypto.requestFailed", (e) => failures.push(e.error));

    setup.server.homeserver.control.expireAccessToken(account.accessToken, { softLogout: true });
    await heidi.processOutgoingRequests();

    expect(failures).toEqual([]);
    expect(events.map(([name]) => name)).toEqual(["http.softLogout", "http.tokenRefreshed"]);
    expect(refused()).toContainEqual({ method: "POST", path: "/_matrix/client/v3/keys/upload" });
    const uploads = setup.server.homeserver.control
      .requestLog()
      .filter((e) => e.path === "/_matrix/client/v3/keys/upload" && e.userId === heidi.userId);
    expect(uploads.map((e) => e.status)).toEqual([200]);
    expect(setup.server.homeserver.state.keys.oneTimeKeyCounts(heidi.userId, heidi.deviceId)).toEqual({
      signed_curve25519: 50,
    });
  });

  it("without a refresh callback, reports the soft logout once and fails the request with a typed error", async () => {
    const account = createAccount(setup.server, "ivan");
    const ivan = await setup.open(account);
    const events = record(ivan);
    const { watch } = setup;

    setup.server.homeserver.control.expireAccessToken(account.accessToken, { softLogout: true });
    const first = await watch.rejection(ivan.secretStorage.getDefaultKeyId());
    // A second, different account-data GET (a key id is given, so the default key is not read).
    const second = await watch.rejection(ivan.secretStorage.isStored("org.example.other", "somekey"));

    for (const error of [first, second]) {
      expect(error).toMatchObject({
        name: "MatrixApiError",
        status: 401,
        errcode: "M_UNKNOWN_TOKEN",
        softLogout: true,
      });
    }
    expect(events.map(([name]) => name)).toEqual(["http.softLogout"]);
    expect(
      setup.server.homeserver.control
        .requestLog()
        .filter((e) => e.status === 401)
        .map((e) => e.path),
    ).toEqual([
      accountDataPath(ivan.userId, "m.secret_storage.default_key"),
      accountDataPath(ivan.userId, "org.example.other"),
    ]);
    expect(watch.lines.filter((l) => l.includes("soft logout; the token cannot be refreshed"))).toHaveLength(
      1,
    );
  });

  it("reports a real logout as loggedOut and does not try to refresh a token the server revoked", async () => {
    const account = await createRefreshableAccount("judy");
    const refresh = refresher(account);
    const judy = await setup.open(account, { refreshToken: refresh.callback });
    const events = record(judy);

    // The app logs the session out with its own call (logging out is not the client's job).
    await createMatrixHttp({ baseUrl: setup.server.url, accessToken: account.accessToken }).request({
      method: "POST",
      path: "/_matrix/client/v3/logout",
      body: {},
      schema: emptyResponseSchema,
    });
    const error = await setup.watch.rejection(judy.secretStorage.getDefaultKeyId());

    expect(error).toMatchObject({ status: 401, errcode: "M_UNKNOWN_TOKEN", softLogout: false });
    expect(events).toEqual([
      [
        "http.loggedOut",
        { method: "GET", path: accountDataPath(judy.userId, "m.secret_storage.default_key") },
      ],
    ]);
    expect(refresh.issued).toEqual([]);
  });
});
