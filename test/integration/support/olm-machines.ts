import { DeviceId, DeviceLists, OlmMachine, RequestType, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { expect } from "vitest";
import { z } from "zod";
import type { RunningMockServer } from "../../../src/testing/index.js";

/**
 * A real crypto-wasm `OlmMachine` (in memory) on a device of the mock homeserver, with the test as
 * its transport: every outgoing request of the machine is carried to the server over a real
 * socket with plain `fetch`, and the answer handed back with `markRequestAsSent`, so the mock is
 * checked against the real library's expectations rather than against the SDK's own reading of the
 * spec. To-device messages are read from the mock's inbox accessor (`GET /_mock/to_device/…`) and
 * acknowledged the way a client does, with sliding sync's `to_device.since` (MSC3885).
 *
 * Call crypto-wasm's `initAsync()` (or `loadCryptoWasm()`) before registering one.
 */

/** An outgoing request of a machine, as the test carries it. */
export type OutgoingRequest = { id?: string; type: RequestType; body: string };

const registered = z.looseObject({ user_id: z.string(), access_token: z.string(), device_id: z.string() });
const keyCounts = z.looseObject({ one_time_key_counts: z.record(z.string(), z.number()) });
const inboxPage = z.looseObject({
  events: z.array(
    z.looseObject({ type: z.string(), sender: z.string(), content: z.record(z.string(), z.unknown()) }),
  ),
  next_batch: z.string(),
});

/**
 * One call to the mock over its socket, with `token` as the bearer if given; an answer other than
 * 200 fails the test, naming the path and showing the server's answer. Returns the answer's text.
 */
export async function callServer(
  server: RunningMockServer,
  method: string,
  path: string,
  token: string | undefined,
  body?: string,
): Promise<string> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
      "content-type": "application/json",
    },
    ...(body !== undefined ? { body } : {}),
  });
  const text = await res.text();
  expect({ path, status: res.status, text: res.status === 200 ? "" : text }).toEqual({
    path,
    status: 200,
    text: "",
  });
  return text;
}

/** Where a request of the machine goes: method and path under `/_matrix/client/v3/`. */
function endpoint(request: OutgoingRequest): [method: string, path: string] {
  const extra = request as { event_type?: string; txn_id?: string };
  switch (request.type) {
    case RequestType.KeysUpload:
      return ["POST", "keys/upload"];
    case RequestType.KeysQuery:
      return ["POST", "keys/query"];
    case RequestType.KeysClaim:
      return ["POST", "keys/claim"];
    case RequestType.ToDevice:
      return [
        "PUT",
        `sendToDevice/${encodeURIComponent(extra.event_type!)}/${encodeURIComponent(extra.txn_id!)}`,
      ];
    case RequestType.SignatureUpload:
      return ["POST", "keys/signatures/upload"];
    default:
      throw new Error(`the test does not carry request type ${RequestType[request.type]}`);
  }
}

export class WireMachine {
  constructor(
    readonly server: RunningMockServer,
    readonly userId: string,
    readonly deviceId: string,
    readonly accessToken: string,
    readonly machine: OlmMachine,
  ) {}

  /** Registers `username` on the server (no UIA round: `m.login.dummy` up front) and makes its machine. */
  static async register<T extends WireMachine>(
    this: new (
      ...args: ConstructorParameters<typeof WireMachine>
    ) => T,
    server: RunningMockServer,
    username: string,
  ): Promise<T> {
    const answer = await callServer(
      server,
      "POST",
      "/_matrix/client/v3/register",
      undefined,
      JSON.stringify({ username, password: `${username}-pw`, auth: { type: "m.login.dummy" } }),
    );
    const account = registered.parse(JSON.parse(answer));
    const machine = await OlmMachine.initialize(new UserId(account.user_id), new DeviceId(account.device_id));
    return new this(server, account.user_id, account.device_id, account.access_token, machine);
  }

  get user(): UserId {
    return new UserId(this.userId);
  }

  /** One authenticated Client-Server call, `path` under `/_matrix/client/v3/`: the answer's text. */
  call(method: string, path: string, body?: string): Promise<string> {
    return callServer(this.server, method, `/_matrix/client/v3/${path}`, this.accessToken, body);
  }

  /** The same with JSON: `body` serialised, the answer parsed. */
  async callJson(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const text = await this.call(method, path, body === undefined ? undefined : JSON.stringify(body));
    return JSON.parse(text) as Record<string, unknown>;
  }

  /**
   * What a test checks in, or changes about, the server's answer to a request before the machine
   * is handed it; what it returns is what the machine gets. As the server said, unless overridden.
   */
  protected received(_request: OutgoingRequest, answer: string): string {
    return answer;
  }

  /** Carries one outgoing request of the machine to the server and the answer back to the machine. */
  async carry(request: OutgoingRequest): Promise<string> {
    const [method, path] = endpoint(request);
    const answer = this.received(request, await this.call(method, path, request.body));
    if (request.id !== undefined) await this.machine.markRequestAsSent(request.id, request.type, answer);
    return answer;
  }

  /** Sends everything the machine wants sent until it wants nothing more. */
  async flush(): Promise<void> {
    for (let round = 0; round < 10; round++) {
      const requests = await this.machine.outgoingRequests();
      if (requests.length === 0) return;
      for (const request of requests) await this.carry(request);
    }
    throw new Error("the machine kept asking for requests");
  }

  /** Makes and publishes the user's cross-signing keys and signs this device with them. */
  async bootstrapCrossSigning(): Promise<void> {
    const requests = await this.machine.bootstrapCrossSigning(true);
    if (requests.uploadKeysRequest) await this.carry(requests.uploadKeysRequest);
    // The first cross-signing upload needs no UIA (MSC3967), so the body goes as the library made it.
    await this.call("POST", "keys/device_signing/upload", requests.uploadSigningKeysRequest.body);
    await this.carry(requests.uploadSignaturesRequest);
    await this.flush();
  }

  /** The server's one-time key counts for this device (an empty `keys/upload` reports them). */
  async oneTimeKeyCounts(): Promise<Map<string, number>> {
    const answer = keyCounts.parse(JSON.parse(await this.call("POST", "keys/upload", "{}")));
    return new Map(Object.entries(answer.one_time_key_counts));
  }

  /**
   * Feeds the device's waiting to-device events to the machine the way a sync would: reads one page
   * of the mock's inbox, hands it over with the key counts and `changed` as the users whose device
   * lists changed, then acknowledges it.
   */
  async receiveToDevice(changed: readonly string[] = []) {
    const inbox = `/_mock/to_device/${encodeURIComponent(this.userId)}/${encodeURIComponent(this.deviceId)}`;
    const page = inboxPage.parse(
      JSON.parse(await callServer(this.server, "GET", `${inbox}?limit=100`, undefined)),
    );
    const processed = await this.machine.receiveSyncChanges(
      JSON.stringify(page.events),
      new DeviceLists(changed.map((id) => new UserId(id))),
      await this.oneTimeKeyCounts(),
      new Set(["signed_curve25519"]),
    );
    await this.acknowledgeToDevice(page.next_batch);
    return { delivered: page.events, processed };
  }

  /** Acknowledges (deletes) the inbox up to `since`, as a sliding sync request does (MSC3885). */
  async acknowledgeToDevice(since: string): Promise<void> {
    await callServer(
      this.server,
      "POST",
      "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync",
      this.accessToken,
      JSON.stringify({ extensions: { to_device: { enabled: true, since } } }),
    );
  }
}

/**
 * Has each machine publish its device and one-time keys, then each bootstrap its user's
 * cross-signing, one after the other in the order given.
 */
export async function publishAndCrossSign(...machines: readonly WireMachine[]): Promise<void> {
  for (const machine of machines) await machine.flush();
  for (const machine of machines) await machine.bootstrapCrossSigning();
}
