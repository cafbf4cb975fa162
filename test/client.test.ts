import { DeviceId, OlmMachine, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type CreateE2eeClientOptions,
  createE2eeClient,
  type E2eeClient,
  type E2eeClientEvents,
} from "../src/client.js";
import { loadCryptoWasm } from "../src/crypto/load-wasm.js";
import type { DrainPageReport } from "../src/dehydration/drain/drain-loop.js";
import { isDrainError } from "../src/dehydration/drain/errors.js";
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
 * A client of a new user whose dehydrated device holds `count` to-device events, and the secret-storage
 * key that opens it.
 */
async function clientWithQueuedEvents(
  server: MockHomeserver,
  localpart: string,
  count: number,
  extra: Pick<CreateE2eeClientOptions, "dehydration"> = {},
) {
  const { client, account } = await clientFor(server, localpart, extra);
  const { secretStorageKey } = await client.bootstrapCrossSigning({ createSecretStorageKey: true });
  const { deviceId } = await client.dehydration.createAndUpload({ secretStorageKey: secretStorageKey! });
  for (let n = 0; n < count; n++) {
    await client.http.request({
      method: "PUT",
      path: `/_matrix/client/v3/sendToDevice/org.example.ping/txn-${n}`,
      body: { messages: { [account.userId]: { [deviceId]: { n } } } },
      schema: emptyResponseSchema,
    });
  }
  return { client, secretStorageKey: secretStorageKey! };
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
    const sent: E2eeClientEvents["requestSent"][] = [];
    client.events.on("requestSent", (e) => sent.push(e));

    await client.processOutgoingRequests();

    expect(sent.map((e) => e.kind)).toEqual(expect.arrayContaining(["KeysUpload", "KeysQuery"]));
    expect(server.state.keys.oneTimeKeyCounts(client.userId, client.deviceId)).toEqual({
      signed_curve25519: 50,
    });
    expect(client.stateStore.durability).toBe("memory");
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
    for (const name of ["requestRetried", "requestFailed", "retryScheduled"] as const) {
      client.events.on(name, () => seen.push(name));
    }
    server.control.scriptFailure({ path: "/_matrix/client/v3/keys/upload", status: 502, times: 2 });

    const retried = new Promise((resolve) => client.events.once("requestRetried", resolve));
    const done = client.processOutgoingRequests();
    await retried;
    await clock.advance(0);
    await done;

    expect(seen).toEqual(["requestRetried", "requestFailed", "retryScheduled"]);
    await client.close();
  });

  it("reports restoring on an account without a cross-signing identity as a typed error", async () => {
    const server = newServer();
    const { client } = await clientFor(server, "mia");
    const created = await client.secretStorage.createKey();

    await expect(client.restoreFromRecoveryKey(created.recoveryKey)).rejects.toMatchObject({
      code: "cross_signing_identity_unknown",
    });
    await client.close();
  });

  it("reports an identity whose keys were never put in secret storage as nothing restored", async () => {
    const server = newServer();
    const { client } = await clientFor(server, "nora");
    await client.bootstrapCrossSigning();
    const created = await client.secretStorage.createKey();

    const result = await client.restoreFromRecoveryKey(created.recoveryKey);
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

    await expect(client.bootstrapCrossSigning({ createSecretStorageKey: true })).rejects.toMatchObject({
      status: 400,
    });
    expect(await client.secretStorage.getDefaultKeyId()).toBeUndefined();

    // Calling again re-publishes the same identity and stores its keys under a fresh default key.
    const again = await client.bootstrapCrossSigning({ createSecretStorageKey: true });
    expect(await client.secretStorage.getDefaultKeyId()).toBe(again.secretStorageKey!.keyId);
    expect(again.storedInSecretStorage.sort()).toEqual(["master", "selfSigning", "userSigning"]);
    const unlocked = await client.secretStorage.unlockWithRecoveryKey(again.recoveryKey!);
    expect(await client.secretStorage.get("m.cross_signing.self_signing", unlocked)).toMatch(
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

    const cut = await capped.client.dehydrationDrainer.drain({ secretStorageKey: capped.secretStorageKey });
    const whole = await plain.client.dehydrationDrainer.drain({ secretStorageKey: plain.secretStorageKey });

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
      client.bootstrapCrossSigning({
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
    await expect(client.bootstrapCrossSigning()).rejects.toMatchObject({ code: "client_closed" });
    await expect(client.restoreFromRecoveryKey("x")).rejects.toMatchObject({ code: "client_closed" });
    expect(client.outgoingRequests.stopped).toBe(true);
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
    expect(client.machine).toBe(machine);

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
    const { client, account } = await clientFor(server, "rhea");
    const { secretStorageKey } = await client.bootstrapCrossSigning({ createSecretStorageKey: true });
    const { deviceId } = await client.dehydration.createAndUpload({ secretStorageKey: secretStorageKey! });
    for (let n = 0; n < 10; n++) {
      await client.http.request({
        method: "PUT",
        path: `/_matrix/client/v3/sendToDevice/org.example.ping/txn-${n}`,
        body: { messages: { [account.userId]: { [deviceId]: { n } } } },
        schema: emptyResponseSchema,
      });
    }
    const order: string[] = [];
    const machine = client.machine;
    const closeMachine = machine.close.bind(machine);
    machine.close = () => {
      order.push("machine closed");
      closeMachine();
    };
    const reports: DrainPageReport[] = [];
    client.dehydrationDrainer.events.on("page", (report) => reports.push(report));
    // Every request now waits at the server until the test moves its clock.
    server.control.setFaults({ latencyMs: 1000 });

    const drain = client.dehydrationDrainer.drain({ secretStorageKey }).then(
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
    expect(await client.dehydrationDrainer.checkpoints.load()).toBeUndefined();
    // The parked request was cancelled, and a drain after close sends nothing.
    expect(server.control.requestLog().at(-1)).toMatchObject({
      path: expect.stringMatching(/\/events$/),
      dropped: true,
    });
    const late = await client.dehydrationDrainer.drain({ secretStorageKey }).catch((e: unknown) => e);
    expect(isDrainError(late) && late.code).toBe("aborted");
    await clock.advance(10_000);
    expect(server.control.requestLog()).toHaveLength(logged);
  });
});
