import { DeviceId, OlmMachine, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { clientInternals, createE2eeClient, type E2eeClient } from "../src/client.js";
import type { CreateE2eeClientOptions, E2eeClientEvents } from "../src/client-options.js";
import { loadCryptoWasm } from "../src/crypto/load-wasm.js";
import type { DrainPageReport } from "../src/dehydration/drain/drain-loop.js";
import { isDrainError } from "../src/dehydration/drain/errors.js";
import { createMatrixHttp } from "../src/http/matrix-http.js";
import { emptyResponseSchema } from "../src/http/schemas/empty.js";
import { createMockHomeserver, ManualClock, type MockHomeserver } from "../src/testing/index.js";

/**
 * The facade's own wiring, against the mock homeserver in-process (its `fetch`, no socket): option
 * checks, event forwarding, closing. The flows over a real socket are in test/integration/.
 */

beforeAll(() => loadCryptoWasm());

function newServer(clock?: ManualClock): MockHomeserver {
  return createMockHomeserver(clock ? { clock } : {});
}

async function clientFor(
  server: MockHomeserver,
  localpart: string,
  extra: Pick<CreateE2eeClientOptions, "olmMachine" | "dehydration"> = {},
) {
  const account = server.control.createUser(localpart, { password: "pw" })!;
  const client = await createE2eeClient({
    baseUrl: server.baseUrl,
    fetch: server.fetch,
    ...account,
    ...extra,
  });
  return { client, account };
}

/**
 * Sends `count` pings to the user's device `deviceId` as another client of the account would, with
 * its own transport (sending to-device messages is not the client's job).
 */
async function sendPings(
  server: MockHomeserver,
  account: { userId: string; accessToken: string },
  deviceId: string,
  count: number,
): Promise<void> {
  const http = createMatrixHttp({
    baseUrl: server.baseUrl,
    fetch: server.fetch,
    accessToken: account.accessToken,
  });
  for (let n = 0; n < count; n++) {
    await http.request({
      method: "PUT",
      path: `/_matrix/client/v3/sendToDevice/org.example.ping/txn-${n}`,
      body: { messages: { [account.userId]: { [deviceId]: { n } } } },
      schema: emptyResponseSchema,
    });
  }
}

/**
 * A client of a new user with cross-signing, a dehydrated device (uploaded by `replaceNow`, as the
 * server has none), and the secret-storage key that opens it.
 */
async function clientWithDehydratedDevice(
  server: MockHomeserver,
  localpart: string,
  extra: Pick<CreateE2eeClientOptions, "dehydration"> = {},
) {
  const { client, account } = await clientFor(server, localpart, extra);
  const { secretStorageKey } = await client.crossSigning.bootstrap({ createSecretStorageKey: true });
  const uploaded = await client.dehydration.replaceNow({ secretStorageKey: secretStorageKey! });
  expect(uploaded).toMatchObject({ action: "replaced", previousDeviceId: undefined });
  return { client, account, deviceId: uploaded.deviceId, secretStorageKey: secretStorageKey! };
}

/**
 * A client of a new user whose dehydrated device holds `count` to-device events, and the secret-storage
 * key that opens it.
 */
async function clientWithQueuedEvents(
  server: MockHomeserver,
  localpart: string,
  count: number,
  extra: Pick<CreateE2eeClientOptions, "dehydration"> = {},
) {
  const made = await clientWithDehydratedDevice(server, localpart, extra);
  await sendPings(server, made.account, made.deviceId, count);
  return made;
}

/** Options the option checks refuse before any request: nothing listens at this URL. */
const deviceA = { baseUrl: "http://localhost", userId: "@a:localhost", deviceId: "A", accessToken: "token" };

describe("createE2eeClient", () => {
  it("refuses both an OlmMachine and a crypto store", async () => {
    const machine = await OlmMachine.initialize(new UserId("@a:localhost"), new DeviceId("A"));
    await expect(
      createE2eeClient({
        ...deviceA,
        olmMachine: machine,
        cryptoStore: { name: "store", passphrase: "pass" },
      }),
    ).rejects.toMatchObject({ code: "invalid_options" });
    machine.close();
  });

  it("refuses a missing access token without echoing anything", async () => {
    await expect(createE2eeClient({ ...deviceA, accessToken: "" })).rejects.toMatchObject({
      code: "invalid_options",
      message: "an access token is required",
    });
  });

  it("refuses an OlmMachine of another device", async () => {
    const machine = await OlmMachine.initialize(new UserId("@a:localhost"), new DeviceId("OTHER"));
    await expect(createE2eeClient({ ...deviceA, olmMachine: machine })).rejects.toMatchObject({
      code: "olm_machine_mismatch",
    });
    machine.close();
  });

  it("wires the machine to the account: processing outgoing requests publishes its keys", async () => {
    const server = newServer();
    const { client } = await clientFor(server, "kim");
    const sent: E2eeClientEvents["crypto.requestSent"][] = [];
    client.events.on("crypto.requestSent", (e) => sent.push(e));

    await client.processOutgoingRequests();

    expect(sent.map((e) => e.kind)).toEqual(expect.arrayContaining(["KeysUpload", "KeysQuery"]));
    expect(server.state.keys.oneTimeKeyCounts(client.userId, client.deviceId)).toEqual({
      signed_curve25519: 50,
    });
    // The default state store is not on the face; without a crypto store it lives in memory.
    expect(clientInternals(client).stateStore.durability).toBe("memory");
    await client.close();
  });

  it("forwards the transport's retries and the loop's failures as its own events", async () => {
    const server = newServer();
    const clock = new ManualClock();
    const account = server.control.createUser("lena", { password: "pw" })!;
    const client = await createE2eeClient({
      baseUrl: server.baseUrl,
      fetch: server.fetch,
      clock,
      random: () => 0,
      retry: { maxAttempts: 2 },
      ...account,
    });
    const seen: string[] = [];
    for (const name of ["http.requestRetried", "crypto.requestFailed", "crypto.retryScheduled"] as const) {
      client.events.on(name, () => seen.push(name));
    }
    server.control.scriptFailure({ path: "/_matrix/client/v3/keys/upload", status: 502, times: 2 });

    const retried = new Promise((resolve) => client.events.once("http.requestRetried", resolve));
    const done = client.processOutgoingRequests();
    await retried;
    await clock.advance(0);
    await done;

    expect(seen).toEqual(["http.requestRetried", "crypto.requestFailed", "crypto.retryScheduled"]);
    await client.close();
  });

  it("reports restoring on an account without a cross-signing identity as a typed error", async () => {
    const server = newServer();
    const { client } = await clientFor(server, "mia");
    const created = await client.secretStorage.createKey();

    await expect(client.crossSigning.restoreFromRecoveryKey(created.recoveryKey)).rejects.toMatchObject({
      name: "SdkError",
      code: "cross_signing_identity_unknown",
    });
    await client.close();
  });

  it("reports an identity whose keys were never put in secret storage as nothing restored", async () => {
    const server = newServer();
    const { client } = await clientFor(server, "nora");
    await client.crossSigning.bootstrap();
    const created = await client.secretStorage.createKey();

    const result = await client.crossSigning.restoreFromRecoveryKey(created.recoveryKey);
    expect(result.restored).toEqual([]);
    // Bootstrapping signed the device already; nothing needed uploading.
    expect(result.deviceCrossSigned).toBe(true);
    await client.close();
  });

  it("makes a new secret-storage key the default only after the private keys are stored under it", async () => {
    const server = newServer();
    const { client } = await clientFor(server, "olga");
    server.control.scriptFailure({
      method: "PUT",
      path: "/_matrix/client/v3/user/{userId}/account_data/m.cross_signing.self_signing",
      status: 400,
      errcode: "M_BAD_JSON",
    });

    await expect(client.crossSigning.bootstrap({ createSecretStorageKey: true })).rejects.toMatchObject({
      status: 400,
    });
    expect(await client.secretStorage.getDefaultKeyId()).toBeUndefined();

    // Calling again re-publishes the same identity and stores its keys under a fresh default key.
    const again = await client.crossSigning.bootstrap({ createSecretStorageKey: true });
    expect(await client.secretStorage.getDefaultKeyId()).toBe(again.secretStorageKey!.keyId);
    expect(again.storedInSecretStorage.sort()).toEqual(["master", "selfSigning", "userSigning"]);
    const unlocked = await client.secretStorage.unlockWithRecoveryKey(again.recoveryKey!);
    // Reading a secret's text is not on the face (restoring imports it without showing it).
    expect(await clientInternals(client).secretStorage.get("m.cross_signing.self_signing", unlocked)).toMatch(
      /^[A-Za-z0-9+/]{43}$/,
    );
    await client.close();
  });

  it("hands dehydration.drain to the drainer: its limits bound every drain the client runs", async () => {
    // Two events a page: a cap of one event stops the drain after its first page.
    const server = createMockHomeserver({
      overrides: { dehydratedEventsLimitParam: false, dehydratedEventsPageSize: 2 },
    });
    const capped = await clientWithQueuedEvents(server, "ines", 6, {
      dehydration: { drain: { limits: { maxEvents: 1 } } },
    });
    const plain = await clientWithQueuedEvents(server, "jana", 6);

    const cut = await capped.client.dehydration.drain({ secretStorageKey: capped.secretStorageKey });
    const whole = await plain.client.dehydration.drain({ secretStorageKey: plain.secretStorageKey });

    expect(cut).toMatchObject({ outcome: "truncated", reason: "event_cap", totals: { pages: 1, events: 2 } });
    expect(whole).toMatchObject({ outcome: "completed", totals: { events: 6 } });
    await capped.client.close();
    await plain.client.close();
  });

  it("refuses both a secret-storage key and a request to create one", async () => {
    const server = newServer();
    const { client } = await clientFor(server, "omar");
    const created = await client.secretStorage.createKey();
    await expect(
      client.crossSigning.bootstrap({
        secretStorageKey: { keyId: created.keyId, key: created.key },
        createSecretStorageKey: true,
      }),
    ).rejects.toMatchObject({ code: "invalid_options" });
    await client.close();
  });
});

describe("closing the client", () => {
  it("cancels account-data requests in flight and refuses new flows", async () => {
    const clock = new ManualClock();
    const server = newServer(clock);
    const { client } = await clientFor(server, "pia");
    server.control.setFaults({ latencyMs: 10_000 });

    const pending = client.secretStorage.getDefaultKeyId().catch((e: unknown) => e);
    await client.close();

    expect(await pending).toMatchObject({ name: "AbortError" });
    await expect(client.crossSigning.bootstrap()).rejects.toMatchObject({ code: "client_closed" });
    await expect(client.crossSigning.restoreFromRecoveryKey("x")).rejects.toMatchObject({
      code: "client_closed",
    });
    await expect(client.crossSigning.restoreFromPassphrase("x")).rejects.toMatchObject({
      code: "client_closed",
    });
    await expect(client.crossSigning.status()).rejects.toMatchObject({ code: "client_closed" });
    // The outgoing-request loop is not on the face: only its state shows that closing stopped it.
    expect(clientInternals(client).outgoingRequests.stopped).toBe(true);
    // Closing twice is harmless.
    await client.close();
  });

  it("leaves an OlmMachine the app passed in open for the app", async () => {
    const server = newServer();
    const account = server.control.createUser("quinn", { password: "pw" })!;
    const machine = await OlmMachine.initialize(new UserId(account.userId), new DeviceId(account.deviceId));
    const client: E2eeClient = await createE2eeClient({
      baseUrl: server.baseUrl,
      fetch: server.fetch,
      olmMachine: machine,
      ...account,
    });
    expect(client.olmMachine).toBe(machine);

    await client.close();
    expect((await machine.outgoingRequests()).length).toBeGreaterThan(0);
    machine.close();
  });

  it("stops a drain the app started, keeping its checkpoint, before it closes the machine", async () => {
    const clock = new ManualClock();
    // Two events a page, so the drain stores a checkpoint before the page it is stopped on.
    const server = createMockHomeserver({
      clock,
      overrides: { dehydratedEventsLimitParam: false, dehydratedEventsPageSize: 2 },
    });
    const { client, deviceId, secretStorageKey } = await clientWithQueuedEvents(server, "rhea", 10);
    const order: string[] = [];
    const machine = client.olmMachine;
    const closeMachine = machine.close.bind(machine);
    machine.close = () => {
      order.push("machine closed");
      closeMachine();
    };
    const reports: DrainPageReport[] = [];
    client.events.on("dehydration.drain.page", (report) => reports.push(report));
    // Every request now waits at the server until the test moves its clock.
    server.control.setFaults({ latencyMs: 1000 });

    const drain = client.dehydration.drain({ secretStorageKey }).then(
      () => "completed",
      (error: unknown) => {
        order.push("drain settled");
        return error;
      },
    );
    while (reports.length === 0) await clock.advance(1000);
    // The next page's request is parked at the server (it went out before this page's import).
    while (clock.pendingSleeps === 0) await clock.advance(0);
    const logged = server.control.requestLog().length;
    await client.close();

    expect(order).toEqual(["drain settled", "machine closed"]);
    const failure = await drain;
    const last = reports.at(-1)!;
    expect(last.totals.events).toBeLessThan(10);
    expect(isDrainError(failure) && failure.code).toBe("aborted");
    expect(isDrainError(failure) && failure.details).toMatchObject({
      deviceId,
      cursor: last.cursor,
      pages: last.page,
    });
    // Pings carry no room key, and only a page that stored one moves the resume point: the
    // stopped drain leaves no checkpoint to resume from, and the next one reads these pages again.
    expect(last.roomKeys).toBe(0);
    expect(last.cursor).toBeUndefined();
    // The checkpoint store is not on the face: read it to prove nothing was stored.
    expect(await clientInternals(client).drainer.checkpoints.load()).toBeUndefined();
    // The parked request was cancelled, and a drain after close sends nothing.
    expect(server.control.requestLog().at(-1)).toMatchObject({
      path: expect.stringMatching(/\/events$/),
      dropped: true,
    });
    const late = await client.dehydration.drain({ secretStorageKey }).catch((e: unknown) => e);
    expect(late).toMatchObject({ code: "client_closed" });
    await clock.advance(10_000);
    expect(server.control.requestLog()).toHaveLength(logged);
  });
});
