import { DeviceId, initAsync, type OlmMachine, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { CryptoEvents } from "../../src/crypto/crypto-events.js";
import { createOlmMachine } from "../../src/crypto/olm-machine.js";
import { OutgoingRequestLoop } from "../../src/crypto/outgoing-requests.js";
import { refreshDeviceLists } from "../../src/crypto/refresh-device-lists.js";
import { createMatrixHttp, type MatrixHttpClient } from "../../src/http/matrix-http.js";
import { createMockHomeserver } from "../../src/testing/index.js";
import { ManualClock } from "../../src/testing/manual-clock.js";

/**
 * Re-querying a user's keys through the outgoing-request loop (no second query path),
 * against the in-process mock homeserver with real crypto-wasm machines.
 */

beforeAll(async () => {
  await initAsync();
});

const PASSWORD = "correct horse battery staple";
const loginResponse = z.looseObject({ device_id: z.string(), access_token: z.string() });

type Homeserver = ReturnType<typeof createMockHomeserver>;

interface Device {
  machine: OlmMachine;
  http: MatrixHttpClient;
  loop: OutgoingRequestLoop;
  clock: ManualClock;
  sent: CryptoEvents["requestSent"]["kind"][];
}

async function device(
  homeserver: Homeserver,
  userId: string,
  deviceId: string,
  token: string,
): Promise<Device> {
  const http = createMatrixHttp({
    baseUrl: homeserver.baseUrl,
    accessToken: token,
    fetch: (request) => homeserver.fetch(request),
    retry: { maxAttempts: 1 },
  });
  const machine = await createOlmMachine({ userId, deviceId });
  const clock = new ManualClock();
  const loop = new OutgoingRequestLoop({ machine, http, clock });
  const sent: Device["sent"] = [];
  loop.events.on("requestSent", ({ kind }) => sent.push(kind));
  return { machine, http, loop, clock, sent };
}

/** Alice's first device with its keys published and her own device list fetched once. */
async function setup() {
  const homeserver = createMockHomeserver();
  const alice = homeserver.control.createUser("alice", { password: PASSWORD })!;
  const first = await device(homeserver, alice.userId, alice.deviceId, alice.accessToken);
  await first.loop.run();
  expect(first.sent).toEqual(["KeysUpload", "KeysQuery"]);
  first.sent.length = 0;
  return { homeserver, alice, first };
}

/** A second device of Alice's, logged in over the mock's HTTP and with its keys published. */
async function secondDevice(homeserver: Homeserver, userId: string): Promise<string> {
  const http = createMatrixHttp({
    baseUrl: homeserver.baseUrl,
    fetch: (request) => homeserver.fetch(request),
  });
  const session = await http.request({
    method: "POST",
    path: "/_matrix/client/v3/login",
    body: { type: "m.login.password", identifier: { type: "m.id.user", user: userId }, password: PASSWORD },
    schema: loginResponse,
    unauthenticated: true,
  });
  const other = await device(homeserver, userId, session.device_id, session.access_token);
  await other.loop.run();
  other.machine.close();
  return session.device_id;
}

async function knows(machine: OlmMachine, userId: string, deviceId: string): Promise<boolean> {
  const found = await machine.getDevice(new UserId(userId), new DeviceId(deviceId), 0);
  found?.free();
  return found !== undefined;
}

describe("refreshDeviceLists", () => {
  it("has the machine query a user it already tracks again, through the loop, and nothing else", async () => {
    const { homeserver, alice, first } = await setup();
    const added = await secondDevice(homeserver, alice.userId);
    expect(await knows(first.machine, alice.userId, added)).toBe(false);
    homeserver.control.clearRequestLog();

    await refreshDeviceLists(first.machine, first.loop, [alice.userId]);

    expect(await knows(first.machine, alice.userId, added)).toBe(true);
    expect(first.sent).toEqual(["KeysQuery"]);
    // One batched query; the empty key counts did not make the machine upload keys.
    expect(homeserver.control.requestLog().map((e) => `${e.method} ${e.path}`)).toEqual([
      "POST /_matrix/client/v3/keys/query",
    ]);
    first.machine.close();
  });

  it("rejects with key_query_failed when the query fails, and the loop retries it later", async () => {
    const { homeserver, alice, first } = await setup();
    homeserver.control.scriptFailure({
      path: "/_matrix/client/v3/keys/query",
      status: 400,
      errcode: "M_UNKNOWN",
    });

    await expect(refreshDeviceLists(first.machine, first.loop, [alice.userId])).rejects.toMatchObject({
      code: "key_query_failed",
      cause: expect.objectContaining({ status: 400 }),
    });
    expect(first.sent).toEqual([]);

    // The machine kept the query pending, so the loop's scheduled retry sends it.
    expect(first.clock.pendingSleeps).toBe(1);
    await first.clock.advance(60_000);
    await first.loop.run();
    expect(first.sent).toEqual(["KeysQuery"]);
    await first.loop.stop();
    first.machine.close();
  });

  it("rejects with key_query_failed, sending nothing, once the loop is stopped", async () => {
    const { homeserver, alice, first } = await setup();
    await first.loop.stop();
    homeserver.control.clearRequestLog();
    await expect(refreshDeviceLists(first.machine, first.loop, [alice.userId])).rejects.toMatchObject({
      code: "key_query_failed",
    });
    expect(homeserver.control.requestLog()).toEqual([]);
    first.machine.close();
  });

  it("rejects with the abort reason when aborted before it starts", async () => {
    const { alice, first } = await setup();
    const reason = new Error("the caller gave up");
    await expect(
      refreshDeviceLists(first.machine, first.loop, [alice.userId], AbortSignal.abort(reason)),
    ).rejects.toBe(reason);
    expect(first.sent).toEqual([]);
    first.machine.close();
  });
});
