import { describe, expect, it } from "vitest";
import {
  deleteDehydratedDevice,
  fetchDehydratedDevice,
  putDehydratedDevice,
} from "../../../src/dehydration/device/device-api.js";
import { DEHYDRATED_DEVICE_PATH } from "../../../src/dehydration/device/names.js";
import type { PutDehydratedDeviceBody } from "../../../src/dehydration/device/wire-schemas.js";
import { createMatrixHttp } from "../../../src/http/matrix-http.js";
import { createMockHomeserver, type ProfileName, type ProfileOverrides } from "../../../src/testing/index.js";
import { ScriptedFetch } from "../../http/scripted-fetch.js";

/** The three MSC3814 calls against the mock (in process) and against scripted oddities. */

const profiles: ProfileName[] = ["synapse-1.157", "synapse-1.156", "tuwunel", "msc"];
/** An id as crypto-wasm makes them: unpadded base64, with `/` and `+`. */
const AWKWARD_ID = "Ab/cd+ef/GhIjKlMnOpQrStUvWxYz0123456789+/Ab";

function setup(profile: ProfileName, overrides: ProfileOverrides = {}) {
  const homeserver = createMockHomeserver({ profile, overrides });
  const user = homeserver.control.createUser("alice")!;
  const http = createMatrixHttp({
    baseUrl: homeserver.baseUrl,
    accessToken: user.accessToken,
    fetch: (request) => homeserver.fetch(request),
  });
  return { homeserver, user, http };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

describe.each(profiles)("MSC3814 calls against the %s mock", (profile) => {
  it("reads 404 M_NOT_FOUND as a supported server without a device", async () => {
    const { http } = setup(profile);
    expect(await fetchDehydratedDevice(http)).toEqual({ status: "none" });
  });

  it("reads the feature switched off (404 M_UNRECOGNIZED) as unsupported", async () => {
    const { http } = setup(profile, { dehydratedDevices: false });
    expect(await fetchDehydratedDevice(http)).toEqual({ status: "unsupported" });
    expect(await deleteDehydratedDevice(http)).toBeUndefined();
  });

  it("fetches a device whose id needs URL-safe handling, with device_data exactly as stored", async () => {
    const { homeserver, user, http } = setup(profile);
    const deviceData = {
      algorithm: "org.matrix.msc3814.v2",
      device_pickle: "pickle",
      nonce: "n",
      extra: [1],
    };
    homeserver.control.injectDehydratedDevice(user.userId, { deviceId: AWKWARD_ID, deviceData });
    expect(await fetchDehydratedDevice(http)).toEqual({
      status: "found",
      device: { deviceId: AWKWARD_ID, deviceData },
    });
  });

  it("deletes the device and then finds none", async () => {
    const { homeserver, user, http } = setup(profile);
    homeserver.control.injectDehydratedDevice(user.userId, {
      deviceId: AWKWARD_ID,
      deviceData: { algorithm: "org.matrix.msc3814.v2" },
    });
    expect(await deleteDehydratedDevice(http)).toBe(AWKWARD_ID);
    expect(homeserver.control.dehydratedDevice(user.userId)).toBeUndefined();
    expect(await deleteDehydratedDevice(http)).toBeUndefined();
  });

  it("turns a PUT to a server without the feature into the typed unsupported error", async () => {
    const { http } = setup(profile, { dehydratedDevices: false });
    const body = {
      device_id: "X",
      device_data: { algorithm: "org.matrix.msc3814.v2" },
      initial_device_display_name: null,
      device_keys: {},
      one_time_keys: {},
      fallback_keys: {},
    } as unknown as PutDehydratedDeviceBody;
    await expect(putDehydratedDevice(http, body)).rejects.toMatchObject({
      name: "DehydrationError",
      code: "unsupported",
    });
  });
});

describe("MSC3814 answers the mock does not give", () => {
  const httpWith = (script: ScriptedFetch) =>
    createMatrixHttp({
      baseUrl: "https://hs.example",
      accessToken: "token",
      fetch: script.fetch,
      retry: { maxAttempts: 1 },
    });

  it("reads a 404 without an errcode (a proxy that never routed the path) as unsupported", async () => {
    const script = new ScriptedFetch().push(new Response("<html>not found</html>", { status: 404 }));
    expect(await fetchDehydratedDevice(httpWith(script))).toEqual({ status: "unsupported" });
    expect(script.calls[0]).toMatchObject({ method: "GET", path: DEHYDRATED_DEVICE_PATH });
  });

  it("reads an old server's 400 M_UNRECOGNIZED as unsupported", async () => {
    const script = new ScriptedFetch().push(json(400, { errcode: "M_UNRECOGNIZED", error: "Unrecognized" }));
    expect(await fetchDehydratedDevice(httpWith(script))).toEqual({ status: "unsupported" });
  });

  it("passes other failures on instead of guessing", async () => {
    const script = new ScriptedFetch().push(json(403, { errcode: "M_FORBIDDEN", error: "no" }));
    await expect(fetchDehydratedDevice(httpWith(script))).rejects.toMatchObject({
      name: "MatrixApiError",
      status: 403,
    });
  });

  it("refuses a 200 whose device lacks device_data as a malformed response", async () => {
    const script = new ScriptedFetch().push(json(200, { device_id: "X" }));
    await expect(fetchDehydratedDevice(httpWith(script))).rejects.toMatchObject({
      name: "MalformedResponseError",
    });
  });

  it("retries the PUT after a lost response, since repeating it only replaces the device", async () => {
    const script = new ScriptedFetch().push(new TypeError("socket hang up"), json(200, { device_id: "NEW" }));
    const http = createMatrixHttp({
      baseUrl: "https://hs.example",
      accessToken: "token",
      fetch: script.fetch,
      retry: { maxAttempts: 2, baseDelayMs: 0, maxDelayMs: 0 },
    });
    const body = { device_id: "NEW" } as unknown as PutDehydratedDeviceBody;
    expect(await putDehydratedDevice(http, body)).toBe("NEW");
    expect(script.calls.map((c) => c.method)).toEqual(["PUT", "PUT"]);
    expect(JSON.parse(script.calls[1]!.body)).toEqual(body);
  });
});
