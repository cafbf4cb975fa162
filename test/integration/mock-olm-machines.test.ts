import {
  DecryptionSettings,
  DeviceId,
  DeviceLists,
  EncryptionSettings,
  initAsync,
  OlmMachine,
  ProcessedToDeviceEventType,
  RequestType,
  RoomId,
  TrustRequirement,
  UserId,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type RunningMockServer, startMockServer } from "../../src/testing/index.js";

/**
 * Two real crypto-wasm `OlmMachine`s (in-memory) talk to the mock homeserver over a real HTTP
 * socket: the test itself carries every outgoing request to the server with plain `fetch` and
 * hands the answer back with `markRequestAsSent`, so the mock's key and to-device endpoints are
 * checked against the real library's expectations rather than our own reading of the spec.
 * To-device messages are read over the socket from the mock's inbox accessor
 * (`GET /_mock/to_device/…`) and acknowledged the way a client does: sliding sync's
 * `to_device.since` (MSC3885).
 */

const registered = z.looseObject({ user_id: z.string(), access_token: z.string(), device_id: z.string() });
const uploadAnswer = z.looseObject({ one_time_key_counts: z.record(z.string(), z.number()) });
const queryAnswer = z.looseObject({
  device_keys: z.record(
    z.string(),
    z.record(z.string(), z.looseObject({ keys: z.record(z.string(), z.string()) })),
  ),
  master_keys: z.record(z.string(), z.unknown()),
  failures: z.record(z.string(), z.unknown()),
});
const inboxAnswer = z.looseObject({
  events: z.array(
    z.looseObject({ type: z.string(), sender: z.string(), content: z.record(z.string(), z.unknown()) }),
  ),
  next_batch: z.string(),
});
const claimAnswer = z.looseObject({
  one_time_keys: z.record(z.string(), z.record(z.string(), z.record(z.string(), z.unknown()))),
  failures: z.record(z.string(), z.unknown()),
});

class WireClient {
  /** Requests sent, by `RequestType` name, so the test can assert what the machine asked for. */
  readonly sent: string[] = [];

  constructor(
    readonly server: RunningMockServer,
    readonly userId: string,
    readonly deviceId: string,
    readonly accessToken: string,
    readonly machine: OlmMachine,
  ) {}

  static async register(server: RunningMockServer, username: string): Promise<WireClient> {
    const res = await fetch(`${server.url}/_matrix/client/v3/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, password: `${username}-pw`, auth: { type: "m.login.dummy" } }),
    });
    expect(res.status).toBe(200);
    const account = registered.parse(await res.json());
    const machine = await OlmMachine.initialize(new UserId(account.user_id), new DeviceId(account.device_id));
    return new WireClient(server, account.user_id, account.device_id, account.access_token, machine);
  }

  get user(): UserId {
    return new UserId(this.userId);
  }

  /** One authenticated call; a non-200 answer fails the test with the server's errcode. */
  async call(method: string, path: string, body: string): Promise<string> {
    const res = await fetch(`${this.server.url}/_matrix/client/v3/${path}`, {
      method,
      headers: { authorization: `Bearer ${this.accessToken}`, "content-type": "application/json" },
      body,
    });
    const text = await res.text();
    expect({
      path,
      status: res.status,
      errcode: res.status === 200 ? undefined : JSON.parse(text).errcode,
    }).toEqual({
      path,
      status: 200,
      errcode: undefined,
    });
    return text;
  }

  /** Carries one outgoing request of the machine to the server and its answer back. */
  async carry(request: { id?: string; type: RequestType; body: string }): Promise<string> {
    const extra = request as { event_type?: string; txn_id?: string };
    let answer: string;
    switch (request.type) {
      case RequestType.KeysUpload:
        answer = await this.call("POST", "keys/upload", request.body);
        uploadAnswer.parse(JSON.parse(answer));
        break;
      case RequestType.KeysQuery:
        answer = await this.call("POST", "keys/query", request.body);
        queryAnswer.parse(JSON.parse(answer));
        break;
      case RequestType.KeysClaim:
        answer = await this.call("POST", "keys/claim", request.body);
        claimAnswer.parse(JSON.parse(answer));
        break;
      case RequestType.ToDevice:
        answer = await this.call(
          "PUT",
          `sendToDevice/${encodeURIComponent(extra.event_type!)}/${encodeURIComponent(extra.txn_id!)}`,
          request.body,
        );
        break;
      case RequestType.SignatureUpload:
        answer = await this.call("POST", "keys/signatures/upload", request.body);
        expect(JSON.parse(answer)).toEqual({ failures: {} });
        break;
      default:
        throw new Error(`the test does not carry request type ${RequestType[request.type]}`);
    }
    this.sent.push(RequestType[request.type]);
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

  /** The server's one-time key counts for this device (an empty `keys/upload` reports them). */
  async oneTimeKeyCounts(): Promise<Map<string, number>> {
    const counts = uploadAnswer.parse(
      JSON.parse(await this.call("POST", "keys/upload", "{}")),
    ).one_time_key_counts;
    return new Map(Object.entries(counts));
  }

  /**
   * Feeds the device's waiting to-device events to the machine the way a sync would: read one page
   * of the mock's inbox, hand it over with the key counts, then acknowledge it.
   */
  async receiveToDevice() {
    const inboxPath = `/_mock/to_device/${encodeURIComponent(this.userId)}/${encodeURIComponent(this.deviceId)}`;
    const res = await fetch(`${this.server.url}${inboxPath}?limit=100`);
    expect(res.status).toBe(200);
    const page = inboxAnswer.parse(await res.json());
    const processed = await this.machine.receiveSyncChanges(
      JSON.stringify(page.events),
      new DeviceLists(),
      await this.oneTimeKeyCounts(),
      new Set(["signed_curve25519"]),
    );
    await this.acknowledgeToDevice(page.next_batch);
    return { delivered: page.events, processed };
  }

  /** Acknowledges (deletes) the inbox up to `since`, as a sliding sync request does (MSC3885). */
  async acknowledgeToDevice(since: string): Promise<void> {
    const res = await fetch(`${this.server.url}/_matrix/client/unstable/org.matrix.simplified_msc3575/sync`, {
      method: "POST",
      headers: { authorization: `Bearer ${this.accessToken}`, "content-type": "application/json" },
      body: JSON.stringify({ extensions: { to_device: { enabled: true, since } } }),
    });
    expect(res.status).toBe(200);
    await res.body?.cancel();
  }
}

let server: RunningMockServer;
let alice: WireClient;
let bob: WireClient;
const roomId = new RoomId("!room:localhost");

beforeAll(async () => {
  await initAsync();
  server = await startMockServer({ host: "127.0.0.1", port: 0 });
  alice = await WireClient.register(server, "alice");
  bob = await WireClient.register(server, "bob");
});

afterAll(async () => {
  alice?.machine.close();
  bob?.machine.close();
  await server?.close();
});

describe("two OlmMachines over the mock homeserver", () => {
  it("upload their device and one-time keys", async () => {
    await alice.flush();
    await bob.flush();

    expect(alice.sent).toContain("KeysUpload");
    const counts = await bob.oneTimeKeyCounts();
    expect(counts.get("signed_curve25519")).toBeGreaterThan(0);
    const aliceKeys = server.homeserver.state.keys.deviceKeys(alice.userId, alice.deviceId)?.keys;
    expect(aliceKeys).toEqual({
      [`ed25519:${alice.deviceId}`]: alice.machine.identityKeys.ed25519.toBase64(),
      [`curve25519:${alice.deviceId}`]: alice.machine.identityKeys.curve25519.toBase64(),
    });
  });

  it("bootstrap cross-signing and see each other's devices as cross-signed by their owners", async () => {
    for (const client of [alice, bob]) {
      const requests = await client.machine.bootstrapCrossSigning(true);
      if (requests.uploadKeysRequest) await client.carry(requests.uploadKeysRequest);
      // The first cross-signing upload needs no UIA (MSC3967), so the body goes as the library made it.
      await client.call("POST", "keys/device_signing/upload", requests.uploadSigningKeysRequest.body);
      await client.carry(requests.uploadSignaturesRequest);
      await client.flush();
    }

    await alice.machine.updateTrackedUsers([bob.user]);
    await bob.machine.updateTrackedUsers([alice.user]);
    await alice.flush();
    await bob.flush();

    const bobSeenByAlice = await alice.machine.getDevice(bob.user, new DeviceId(bob.deviceId));
    const aliceSeenByBob = await bob.machine.getDevice(alice.user, new DeviceId(alice.deviceId));
    expect(alice.sent).toContain("KeysQuery");
    expect(bobSeenByAlice?.curve25519Key?.toBase64()).toBe(bob.machine.identityKeys.curve25519.toBase64());
    expect(bobSeenByAlice?.isCrossSignedByOwner()).toBe(true);
    expect(aliceSeenByBob?.isCrossSignedByOwner()).toBe(true);
  });

  it("claim a one-time key and exchange an Olm-encrypted to-device message", async () => {
    const before = (await bob.oneTimeKeyCounts()).get("signed_curve25519") ?? 0;
    const claim = await alice.machine.getMissingSessions([bob.user]);
    expect(claim).toBeDefined();
    const claimed = claimAnswer.parse(JSON.parse(await alice.carry(claim!)));
    expect(Object.keys(claimed.one_time_keys[bob.userId]?.[bob.deviceId] ?? {})).toHaveLength(1);
    expect((await bob.oneTimeKeyCounts()).get("signed_curve25519")).toBe(before - 1);

    const device = await alice.machine.getDevice(bob.user, new DeviceId(bob.deviceId));
    const encrypted = await device!.encryptToDeviceEvent("org.example.secret", { body: "hello, bob" });
    await alice.call(
      "PUT",
      "sendToDevice/m.room.encrypted/olm-1",
      JSON.stringify({ messages: { [bob.userId]: { [bob.deviceId]: JSON.parse(encrypted) } } }),
    );
    const { delivered, processed } = await bob.receiveToDevice();

    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toMatchObject({ type: "m.room.encrypted", sender: alice.userId });
    expect(JSON.stringify(delivered[0])).not.toContain("hello, bob");
    const decrypted = processed.filter((e) => e.type === ProcessedToDeviceEventType.Decrypted);
    expect(decrypted).toHaveLength(1);
    expect(JSON.parse(decrypted[0]!.rawEvent)).toMatchObject({
      type: "org.example.secret",
      sender: alice.userId,
      content: { body: "hello, bob" },
    });
    expect(server.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId).events).toEqual([]);
    await bob.flush();
  });

  it("share a Megolm room key through to-device messages and decrypt a room event with it", async () => {
    const shares = await alice.machine.shareRoomKey(roomId, [bob.user], new EncryptionSettings());
    expect(shares.length).toBeGreaterThan(0);
    for (const share of shares) await alice.carry(share);
    const encrypted = await alice.machine.encryptRoomEvent(
      roomId,
      "m.room.message",
      JSON.stringify({ msgtype: "m.text", body: "the room secret" }),
    );

    const { delivered } = await bob.receiveToDevice();
    expect(delivered.map((e) => e.type)).toEqual(["m.room.encrypted"]);
    const event = {
      type: "m.room.encrypted",
      event_id: "$megolm-1",
      sender: alice.userId,
      origin_server_ts: Date.now(),
      room_id: roomId.toString(),
      content: JSON.parse(encrypted),
    };
    const decrypted = await bob.machine.decryptRoomEvent(
      JSON.stringify(event),
      roomId,
      new DecryptionSettings(TrustRequirement.CrossSignedOrLegacy),
    );

    expect(JSON.stringify(event)).not.toContain("the room secret");
    expect(JSON.parse(decrypted.event)).toMatchObject({
      type: "m.room.message",
      content: { msgtype: "m.text", body: "the room secret" },
    });
    expect(decrypted.sender.toString()).toBe(alice.userId);
  });
});
