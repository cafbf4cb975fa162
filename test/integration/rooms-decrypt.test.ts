import {
  DeviceId,
  EncryptionSettings,
  initAsync,
  LocalTrust,
  OlmMachine,
  RequestType,
  RoomId,
  UserId,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { Logger } from "../../src/logger.js";
import {
  type RoomDecryptionEvents,
  RoomDecryptor,
  type RoomDecryptResult,
} from "../../src/rooms/room-decryption.js";
import { canonicalJson, type RunningMockServer, startMockServer } from "../../src/testing/index.js";
import { type OutgoingRequest, publishAndCrossSign, WireMachine } from "./support/olm-machines.js";

/**
 * `RoomDecryptor` on real crypto-wasm machines: alice sends, bob decrypts. Both talk to the mock
 * homeserver over a real socket; the test carries each machine's outgoing requests to it and the
 * answers back (`markRequestAsSent`), and feeds bob's to-device inbox to his machine the way a sync
 * does, so late keys and withheld notices reach the decryptor through the machine's own callbacks.
 */

const queryAnswer = z.looseObject({
  device_keys: z.record(z.string(), z.record(z.string(), z.unknown())),
});

class Party extends WireMachine {
  /** Rewrites a `keys/query` answer before the machine sees it (a server listing a device). */
  rewriteQuery: ((answer: z.infer<typeof queryAnswer>) => void) | undefined;

  protected override received(request: OutgoingRequest, answer: string): string {
    if (request.type !== RequestType.KeysQuery || this.rewriteQuery === undefined) return answer;
    const parsed = queryAnswer.parse(JSON.parse(answer));
    this.rewriteQuery(parsed);
    return JSON.stringify(parsed);
  }

  /**
   * One sync's worth of to-device events and device-list changes into the machine, then the inbox
   * acknowledged (MSC3885 `since`) and what the machine wants sent sent. Returns the types delivered.
   */
  async sync(changed: string[] = []): Promise<string[]> {
    const { delivered, processed } = await this.receiveToDevice(changed);
    for (const item of processed) item.free();
    await this.flush();
    return delivered.map((e) => e.type);
  }
}

/** What the decryptor emitted, with a way to wait for the next one. */
class Heard {
  readonly events: { event: keyof RoomDecryptionEvents; payload: unknown }[] = [];
  #waiters: { match: (e: { event: string; payload: unknown }) => boolean; resolve: (p: unknown) => void }[] =
    [];

  readonly emit = <K extends keyof RoomDecryptionEvents & string>(
    event: K,
    payload: RoomDecryptionEvents[K],
  ) => {
    const entry = { event, payload };
    this.events.push(entry);
    for (const waiter of [...this.#waiters]) {
      if (waiter.match(entry)) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve(payload);
      }
    }
  };

  /** The first event of this name (already heard, or to come) matching `match`. */
  next<K extends keyof RoomDecryptionEvents>(
    event: K,
    match: (payload: RoomDecryptionEvents[K]) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<RoomDecryptionEvents[K]> {
    const test = (e: { event: string; payload: unknown }) =>
      e.event === event && match(e.payload as RoomDecryptionEvents[K]);
    const already = this.events.find(test);
    if (already !== undefined) return Promise.resolve(already.payload as RoomDecryptionEvents[K]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push({
        match: test,
        resolve: (p) => {
          clearTimeout(timer);
          resolve(p as RoomDecryptionEvents[K]);
        },
      });
    });
  }
}

function capturingLogger() {
  const lines: string[] = [];
  const sink = (...args: unknown[]) => lines.push(JSON.stringify(args));
  const logger: Logger = { debug: sink, info: sink, warn: sink, error: sink };
  return { logger, lines };
}

let server: RunningMockServer;
let alice: Party;
let bob: Party;
let heard: Heard;
let decryptor: RoomDecryptor;
let logLines: string[];
let seq = 0;

/** An encrypted room event of alice's in `roomId`, as the server would serve it. */
async function aliceSends(roomId: string, body: string, overrides: Record<string, unknown> = {}) {
  const content = await alice.machine.encryptRoomEvent(
    new RoomId(roomId),
    "m.room.message",
    JSON.stringify({ msgtype: "m.text", body }),
  );
  return {
    type: "m.room.encrypted",
    event_id: `$event-${++seq}`,
    room_id: roomId,
    sender: alice.userId,
    origin_server_ts: Date.now(),
    content: JSON.parse(content) as Record<string, unknown>,
    unsigned: { age: 1 },
    ...overrides,
  };
}

/** alice's room-key requests for `roomId`, not yet sent. */
async function aliceShares(roomId: string, users: Party[] = [bob]) {
  const claim = await alice.machine.getMissingSessions(users.map((u) => u.user));
  if (claim) await alice.carry(claim);
  return alice.machine.shareRoomKey(
    new RoomId(roomId),
    users.map((u) => u.user),
    new EncryptionSettings(),
  );
}

async function aliceSharesNow(roomId: string): Promise<void> {
  for (const request of await aliceShares(roomId)) await alice.carry(request);
}

beforeAll(async () => {
  await initAsync();
  server = await startMockServer({ host: "127.0.0.1", port: 0 });
  alice = await Party.register(server, "alice");
  bob = await Party.register(server, "bob");
  await publishAndCrossSign(alice, bob);
  await alice.machine.updateTrackedUsers([bob.user]);
  await bob.machine.updateTrackedUsers([alice.user]);
  await alice.flush();
  await bob.flush();
  heard = new Heard();
  const { logger, lines } = capturingLogger();
  logLines = lines;
  decryptor = new RoomDecryptor({ machine: bob.machine, logger, emit: heard.emit });
});

afterAll(async () => {
  decryptor?.close();
  alice?.machine.close();
  bob?.machine.close();
  await server?.close();
});

describe("RoomDecryptor on real machines", () => {
  it("decrypts an event and names its sender, device and trust", async () => {
    const room = "!plain:localhost";
    await aliceSharesNow(room);
    expect(await bob.sync()).toEqual(["m.room.encrypted"]);
    const event = await aliceSends(room, "the room secret");

    const result = await decryptor.decrypt(event);

    expect(result).toEqual({
      ok: true,
      event: { type: "m.room.message", content: { msgtype: "m.text", body: "the room secret" } },
      sender: {
        userId: alice.userId,
        deviceId: alice.deviceId,
        curve25519Key: alice.machine.identityKeys.curve25519.toBase64(),
        // alice's device is cross-signed by alice, whom bob has not verified.
        trust: "unverified",
        shield: { color: "none", code: undefined, message: undefined },
      },
    });
    expect(structuredClone(result)).toEqual(result);
    // alice's device is cross-signed: the strictest requirement decrypts it too.
    expect(await decryptor.decrypt(event, { trust: "cross_signed" })).toMatchObject({ ok: true });
    expect(decryptor.waitingCount).toBe(0);
    expect(JSON.stringify(result)).not.toContain(String(event.content.ciphertext));
  });

  it("an event whose sender is not the session's owner fails as mismatched_sender, at every trust", async () => {
    const room = "!plain:localhost";
    const event = await aliceSends(room, "forged", { sender: "@mallory:localhost" });
    for (const trust of ["untrusted", "cross_signed_or_legacy", "cross_signed"] as const) {
      expect(await decryptor.decrypt(event, { trust }), trust).toMatchObject({
        ok: false,
        reason: "mismatched_sender",
        waiting: false,
      });
    }
    expect(decryptor.waitingCount).toBe(0);
  });

  it("a malformed event is bad_event, never an exception, and changes nothing", async () => {
    const room = "!plain:localhost";
    const good = await aliceSends(room, "still fine");
    await decryptor.decrypt({
      ...good,
      event_id: "$waits",
      content: { ...good.content, session_id: "nope" },
    });
    expect(decryptor.waitingCount).toBe(1);

    const bad: unknown[] = [
      JSON.stringify(good),
      "{not json",
      null,
      [],
      { ...good, type: "m.room.message" },
      { ...good, content: { ...good.content, session_id: undefined } },
      { ...good, content: { ...good.content, ciphertext: undefined } },
      { ...good, content: { ...good.content, algorithm: undefined } },
      { ...good, content: { ...good.content, algorithm: "m.olm.v1.curve25519-aes-sha2" } },
      { ...good, room_id: "not a room" },
      { ...good, sender: 42 },
      { ...good, origin_server_ts: undefined },
    ];
    for (const event of bad) {
      const result = await decryptor.decrypt(event);
      expect(result, JSON.stringify(event)?.slice(0, 80)).toMatchObject({
        ok: false,
        reason: "bad_event",
        waiting: false,
      });
    }
    expect(decryptor.waitingCount).toBe(1);
    expect(await decryptor.decrypt(good)).toMatchObject({
      ok: true,
      event: { content: { body: "still fine" } },
    });

    // Well-formed but corrupt: the crypto layer's own failure.
    const ciphertext = String(good.content.ciphertext);
    const flipped = `${ciphertext.slice(0, 20)}${ciphertext[20] === "A" ? "B" : "A"}${ciphertext.slice(21)}`;
    const corrupt = await decryptor.decrypt({ ...good, content: { ...good.content, ciphertext: flipped } });
    expect(corrupt).toMatchObject({ ok: false, reason: "unable_to_decrypt", waiting: false });
    expect(JSON.stringify(corrupt)).not.toContain(flipped);
    expect(logLines.join("\n")).not.toContain(ciphertext);
  });

  it("a late key: missing_room_key and waiting, then `decrypted` once the to-device key arrives", async () => {
    const room = "!late:localhost";
    const shares = await aliceShares(room);
    const event = await aliceSends(room, "sent before the key arrived");

    const first = await decryptor.decrypt(event);
    expect(first).toMatchObject({ ok: false, reason: "missing_room_key", waiting: true });
    const decrypted = heard.next("decrypted", (p) => p.eventId === event.event_id);

    for (const request of shares) await alice.carry(request);
    expect(await bob.sync()).toEqual(["m.room.encrypted"]);

    expect(await decrypted).toEqual({
      roomId: room,
      eventId: event.event_id,
      result: {
        ok: true,
        event: {
          type: "m.room.message",
          content: { msgtype: "m.text", body: "sent before the key arrived" },
        },
        sender: expect.objectContaining({
          userId: alice.userId,
          deviceId: alice.deviceId,
          trust: "unverified",
        }),
      },
    });
    expect(heard.events.filter((e) => e.event === "decrypted")).toHaveLength(1);
    expect(decryptor.waitingCount).toBe(1); // "$waits" of the test before, for a session that never comes
    expect(await decryptor.decrypt(event)).toMatchObject({ ok: true });
  });

  it("an unknown message index waits, and a key export with the earlier index decrypts it", async () => {
    const room = "!index:localhost";
    // The session starts before bob is given it: he gets it from message index 1 on.
    expect(await alice.machine.shareRoomKey(new RoomId(room), [], new EncryptionSettings())).toEqual([]);
    const early = await aliceSends(room, "index zero");
    await aliceSharesNow(room);
    const later = await aliceSends(room, "index one");
    await bob.sync();

    expect(await decryptor.decrypt(later)).toMatchObject({ ok: true });
    expect(await decryptor.decrypt(early)).toMatchObject({
      ok: false,
      reason: "unknown_message_index",
      waiting: true,
    });

    const decrypted = heard.next("decrypted", (p) => p.eventId === early.event_id);
    const exported = await alice.machine.exportRoomKeys(() => true);
    await bob.machine.importExportedRoomKeys(exported, () => {});
    expect((await decrypted).result.event.content).toEqual({ msgtype: "m.text", body: "index zero" });
  });

  it("a withheld key (m.blacklisted): keyWithheld, then withheld and waiting; an export then decrypts", async () => {
    const room = "!withheld:localhost";
    const bobDevice = await alice.machine.getDevice(bob.user, new DeviceId(bob.deviceId));
    await bobDevice!.setLocalTrust(LocalTrust.BlackListed);
    const shares = await aliceShares(room);
    expect(shares.map((r) => (r as unknown as { event_type: string }).event_type)).toEqual([
      "m.room_key.withheld",
    ]);
    const event = await aliceSends(room, "not for bob");

    expect(await decryptor.decrypt(event)).toMatchObject({ reason: "missing_room_key", waiting: true });
    const withheldHeard = heard.next("keyWithheld", (p) => p.roomId === room);
    for (const request of shares) await alice.carry(request);
    expect(await bob.sync()).toEqual(["m.room_key.withheld"]);

    const withheld = await withheldHeard;
    expect(withheld).toEqual({
      roomId: room,
      sessionId: event.content.session_id,
      sender: alice.userId,
      code: "m.blacklisted",
      eventIds: [event.event_id],
    });
    const again = await decryptor.decrypt(event);
    expect(again).toEqual({
      ok: false,
      reason: "withheld",
      withheldCode: "m.blacklisted",
      message: expect.any(String),
      waiting: true,
    });

    // Not final: the key can still come another way (a backup, a forward, an export — here an
    // export), and the waiting event is then decrypted.
    await bobDevice!.setLocalTrust(LocalTrust.Unset);
    bobDevice!.free();
    const decrypted = heard.next("decrypted", (p) => p.eventId === event.event_id);
    const sessionId = String(event.content.session_id);
    const exported = await alice.machine.exportRoomKeys((session) => session.sessionId === sessionId);
    await bob.machine.importExportedRoomKeys(exported, () => {});
    expect((await decrypted).result.event.content).toEqual({ msgtype: "m.text", body: "not for bob" });
  });

  it("a session from a device bob does not know: unknown_sender_device under cross_signed", async () => {
    // carol's machine is on no server: bob gets her session only through a key export.
    const carol = await OlmMachine.initialize(new UserId("@carol:localhost"), new DeviceId("CAROL"));
    try {
      const room = "!carol:localhost";
      await carol.shareRoomKey(new RoomId(room), [], new EncryptionSettings());
      const content = await carol.encryptRoomEvent(
        new RoomId(room),
        "m.room.message",
        JSON.stringify({ body: "hi" }),
      );
      await bob.machine.importExportedRoomKeys(await carol.exportRoomKeys(() => true), () => {});
      const event = {
        type: "m.room.encrypted",
        event_id: "$carol-1",
        room_id: room,
        sender: "@carol:localhost",
        origin_server_ts: Date.now(),
        content: JSON.parse(content),
      };

      expect(await decryptor.decrypt(event, { trust: "cross_signed" })).toMatchObject({
        ok: false,
        reason: "unknown_sender_device",
        waiting: false,
      });
      expect(await decryptor.decrypt(event)).toMatchObject({
        ok: true,
        sender: {
          userId: "@carol:localhost",
          deviceId: undefined,
          trust: "authenticity_not_guaranteed",
          shield: { color: "grey", code: "authenticity_not_guaranteed" },
        },
      });
    } finally {
      carol.close();
    }
  });

  it("an event from a device flagged dehydrated fails as from_dehydrated_device (MSC3814)", async () => {
    // A dehydrated device never sends (it has no live client), so the test plays what a buggy or
    // compromised client would do: an ordinary machine whose signed device keys say
    // `"dehydrated": true`. Its keys go to bob through the server's `keys/query` answer.
    const secondId = "ALICE2";
    const second = await OlmMachine.initialize(new UserId(alice.userId), new DeviceId(secondId));
    try {
      const asSecond = new Party(server, alice.userId, secondId, alice.accessToken, second);
      let signedKeys: Record<string, unknown> | undefined;
      for (const request of await second.outgoingRequests()) {
        if (request.type !== RequestType.KeysUpload) continue;
        const { device_keys: keys } = JSON.parse(request.body) as { device_keys: Record<string, unknown> };
        // Signed without `signatures` and `unsigned` (spec, "Signing JSON").
        const { signatures: _signatures, unsigned: _unsigned, ...signable } = keys;
        const flagged = { ...signable, dehydrated: true };
        const signatures = await second.sign(canonicalJson(flagged));
        signedKeys = { ...flagged, signatures: JSON.parse(signatures.asJSON()) };
        signatures.free();
        await second.markRequestAsSent(
          request.id!,
          request.type,
          JSON.stringify({ one_time_key_counts: { signed_curve25519: 50 } }),
        );
      }
      expect(signedKeys).toMatchObject({ device_id: secondId, dehydrated: true });

      await second.updateTrackedUsers([bob.user]);
      await asSecond.flush();
      const room = "!dehydrated:localhost";
      const claim = await second.getMissingSessions([bob.user]);
      if (claim) await asSecond.carry(claim);
      for (const request of await second.shareRoomKey(
        new RoomId(room),
        [bob.user],
        new EncryptionSettings(),
      )) {
        await asSecond.carry(request);
      }
      // bob takes the room key while he does not yet know the device is flagged (crypto-wasm drops
      // to-device messages from a device it knows to be dehydrated).
      await bob.sync();
      const content = await second.encryptRoomEvent(
        new RoomId(room),
        "m.room.message",
        JSON.stringify({ msgtype: "m.text", body: "from a dehydrated device" }),
      );
      const event = {
        type: "m.room.encrypted",
        event_id: "$dehydrated-1",
        room_id: room,
        sender: alice.userId,
        origin_server_ts: Date.now(),
        content: JSON.parse(content),
      };
      expect(await decryptor.decrypt(event)).toMatchObject({ ok: true, sender: { deviceId: secondId } });

      bob.rewriteQuery = (answer) => {
        answer.device_keys[alice.userId]![secondId] = signedKeys;
      };
      await bob.sync([alice.userId]);
      const device = await bob.machine.getDevice(alice.user, new DeviceId(secondId));
      expect(device?.isDehydrated).toBe(true);
      device?.free();

      expect(await decryptor.decrypt(event)).toEqual({
        ok: false,
        reason: "from_dehydrated_device",
        message: expect.any(String),
        waiting: false,
      });
      // alice's own device is untouched by the rule.
      expect(await decryptor.decrypt(await aliceSends("!plain:localhost", "ordinary"))).toMatchObject({
        ok: true,
      });
    } finally {
      bob.rewriteQuery = undefined;
      second.close();
    }
  });

  it("after close, key updates reach nothing and decrypt rejects", async () => {
    const room = "!closed:localhost";
    const shares = await aliceShares(room);
    const event = await aliceSends(room, "never retried");
    const own = new RoomDecryptor({
      machine: bob.machine,
      logger: capturingLogger().logger,
      emit: heard.emit,
    });
    expect(await own.decrypt(event)).toMatchObject({ waiting: true });
    own.close();
    const before = heard.events.length;
    for (const request of shares) await alice.carry(request);
    await bob.sync();
    await own.retryWaiting();
    expect(heard.events.length).toBe(before);
    await expect(own.decrypt(event)).rejects.toMatchObject({ name: "AbortError" });
    // crypto-wasm keeps one callback of each kind per machine: the closed decryptor's replaced the
    // shared one's, which still decrypts when asked.
    const result: RoomDecryptResult = await decryptor.decrypt(event);
    expect(result).toMatchObject({ ok: true });
  });
});
