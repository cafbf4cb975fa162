import {
  type DecryptedRoomEvent,
  DecryptionErrorCode,
  type DecryptionSettings,
  initAsync,
  type RoomKeyInfo,
  type RoomKeyWithheldInfo,
  ShieldColor,
  ShieldStateCode,
  TrustRequirement,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { TypedEmitter } from "../../src/events/emitter.js";
import type { Logger } from "../../src/logger.js";
import type { RoomsEvents } from "../../src/rooms/events.js";
import {
  type RoomDecryptionEvents,
  type RoomDecryptionMachine,
  RoomDecryptor,
  type RoomDecryptResult,
} from "../../src/rooms/room-decryption.js";

/*
 * The decryptor against a scripted machine: every answer crypto-wasm can give (each error code,
 * each shield) without building the Megolm state that produces it. The same paths against real
 * machines are in test/integration/rooms-decrypt.test.ts.
 */

beforeAll(async () => {
  await initAsync();
});

const CIPHERTEXT = "AwgAEpAB0123456789abcdefSECRETCIPHERTEXT";
const ROOM = "!room:example.org";

function encrypted(overrides: Record<string, unknown> = {}, content: Record<string, unknown> = {}) {
  return {
    type: "m.room.encrypted",
    event_id: "$event1",
    room_id: ROOM,
    sender: "@alice:example.org",
    origin_server_ts: 1_700_000_000_000,
    content: {
      algorithm: "m.megolm.v1.aes-sha2",
      ciphertext: CIPHERTEXT,
      session_id: "session-A",
      sender_key: "curveKeyOfAlice",
      device_id: "ALICEDEVICE",
      ...content,
    },
    ...overrides,
  };
}

/** Counts `free()` calls of the fakes; a second free of one object is a use-after-free in wasm. */
class Frees {
  readonly counts = new Map<string, number>();
  fn(name: string): () => void {
    let freed = false;
    return () => {
      if (freed) throw new Error(`double free of ${name}`);
      freed = true;
      this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
    };
  }
  get(name: string): number {
    return this.counts.get(name) ?? 0;
  }
}

interface Shield {
  color: ShieldColor;
  code: ShieldStateCode | undefined;
  message?: string;
}

function decrypted(
  frees: Frees,
  opts: {
    event?: string;
    deviceId?: string | undefined;
    strict?: Shield;
    lax?: Shield;
    sender?: string;
  } = {},
): DecryptedRoomEvent {
  const strict = opts.strict ?? { color: ShieldColor.Red, code: ShieldStateCode.UnverifiedIdentity };
  const lax = opts.lax ?? { color: ShieldColor.None, code: undefined };
  const shield = (s: Shield, name: string) => ({ ...s, message: s.message, free: frees.fn(name) });
  const deviceId = "deviceId" in opts ? opts.deviceId : "ALICEDEVICE";
  return {
    event:
      opts.event ??
      JSON.stringify({
        type: "m.room.message",
        content: { msgtype: "m.text", body: "hello" },
        event_id: "$event1",
        room_id: ROOM,
        sender: "@alice:example.org",
        origin_server_ts: 1,
        unsigned: {},
      }),
    sender: { toString: () => opts.sender ?? "@alice:example.org", free: frees.fn("sender") },
    senderDevice:
      deviceId === undefined ? undefined : { toString: () => deviceId, free: frees.fn("senderDevice") },
    senderCurve25519Key: "curveKeyOfAlice",
    shieldState: (isStrict: boolean) => (isStrict ? shield(strict, "strict") : shield(lax, "lax")),
    free: frees.fn("decrypted"),
  } as unknown as DecryptedRoomEvent;
}

function megolmError(frees: Frees, code: DecryptionErrorCode, withheldCode?: string) {
  return {
    code,
    description: `rust says: ${CIPHERTEXT} at line 1 column 99`,
    withheldCode,
    maybe_withheld: withheldCode === undefined ? undefined : "The sender has blocked you.",
    free: frees.fn("error"),
  };
}

type Answer = () => Promise<DecryptedRoomEvent>;

/** A machine whose `decryptRoomEvent` answers from a script, per session id. */
class FakeMachine {
  readonly frees = new Frees();
  readonly calls: { event: Record<string, unknown>; requirement: TrustRequirement; settings: unknown }[] = [];
  readonly answers = new Map<string, Answer[]>();
  fallback: Answer = () => Promise.reject(megolmError(this.frees, DecryptionErrorCode.MissingRoomKey));
  devices = new Map<string, { isDehydrated: boolean }>();
  roomKeysUpdated: ((infos: RoomKeyInfo[]) => Promise<void>) | undefined;
  withheld: ((infos: RoomKeyWithheldInfo[]) => Promise<void>) | undefined;
  inFlight = 0;
  maxInFlight = 0;

  answer(sessionId: string, ...answers: Answer[]): void {
    this.answers.set(sessionId, [...(this.answers.get(sessionId) ?? []), ...answers]);
  }

  readonly machine = {
    decryptRoomEvent: async (json: string, _roomId: unknown, settings: DecryptionSettings) => {
      const event = JSON.parse(json) as { content: { session_id: string } };
      this.calls.push({ event, requirement: settings.sender_device_trust_requirement, settings });
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, 1));
        const next = this.answers.get(event.content.session_id)?.shift() ?? this.fallback;
        return await next();
      } finally {
        this.inFlight--;
      }
    },
    getDevice: async (user: { toString(): string }, device: { toString(): string }) => {
      const found = this.devices.get(`${user.toString()}|${device.toString()}`);
      return found === undefined
        ? undefined
        : { ...found, free: this.frees.fn(`device ${device.toString()}`) };
    },
    registerRoomKeyUpdatedCallback: (cb: (infos: RoomKeyInfo[]) => Promise<void>) => {
      this.roomKeysUpdated = cb;
    },
    registerRoomKeysWithheldCallback: (cb: (infos: RoomKeyWithheldInfo[]) => Promise<void>) => {
      this.withheld = cb;
    },
  } as unknown as RoomDecryptionMachine;

  keyInfo(roomId: string, sessionId: string): RoomKeyInfo {
    return {
      roomId: { toString: () => roomId, free: this.frees.fn(`info room ${sessionId}`) },
      sessionId,
      free: this.frees.fn(`info ${sessionId}`),
    } as unknown as RoomKeyInfo;
  }

  withheldInfo(roomId: string, sessionId: string, code: string): RoomKeyWithheldInfo {
    return {
      roomId: { toString: () => roomId, free: this.frees.fn(`withheld room ${sessionId}`) },
      sender: { toString: () => "@alice:example.org", free: this.frees.fn(`withheld sender ${sessionId}`) },
      sessionId,
      withheldCode: code,
      free: this.frees.fn(`withheld ${sessionId}`),
    } as unknown as RoomKeyWithheldInfo;
  }
}

function capturingLogger() {
  const lines: string[] = [];
  const sink = (...args: unknown[]) => lines.push(JSON.stringify(args));
  const logger: Logger = { debug: sink, info: sink, warn: sink, error: sink };
  return { logger, lines };
}

function setup(options: { maxWaiting?: number; emitThrows?: boolean } = {}) {
  const fake = new FakeMachine();
  const { logger, lines } = capturingLogger();
  const emitted: { event: string; payload: unknown }[] = [];
  const decryptor = new RoomDecryptor({
    machine: fake.machine,
    logger,
    maxWaiting: options.maxWaiting,
    emit: (event, payload) => {
      emitted.push({ event, payload });
      if (options.emitThrows) throw new Error("listener broke");
    },
  });
  /** Resolves once the retries queued so far are done. */
  const settled = () => decryptor.retryWaiting([]);
  return { fake, decryptor, emitted, lines, settled };
}

describe("RoomDecryptor: bad events", () => {
  const bad: [string, unknown][] = [
    ["undefined", undefined],
    ["null", null],
    ["a string", JSON.stringify(encrypted())],
    ["an array", [encrypted()]],
    ["a number", 42],
    ["no type", { ...encrypted(), type: undefined }],
    ["another type", encrypted({ type: "m.room.message" })],
    ["no event_id", { ...encrypted(), event_id: undefined }],
    ["an event_id without $", encrypted({ event_id: "event1" })],
    ["a numeric room_id", encrypted({ room_id: 7 })],
    ["a room_id without !", encrypted({ room_id: "room:example.org" })],
    ["an invalid sender", encrypted({ sender: "@" })],
    ["a sender without a server", encrypted({ sender: "@alice" })],
    ["no origin_server_ts", { ...encrypted(), origin_server_ts: undefined }],
    ["a negative origin_server_ts", encrypted({ origin_server_ts: -1 })],
    ["content not an object", encrypted({ content: "x" })],
    ["content null", encrypted({ content: null })],
    ["no session_id", encrypted({}, { session_id: undefined })],
    ["an empty session_id", encrypted({}, { session_id: "" })],
    ["no ciphertext", encrypted({}, { ciphertext: undefined })],
    ["a ciphertext object (Olm's shape)", encrypted({}, { ciphertext: { key: { type: 0, body: "x" } } })],
    ["a ciphertext that is not base64", encrypted({}, { ciphertext: "not base64!" })],
    ["no algorithm", encrypted({}, { algorithm: undefined })],
    ["the Olm algorithm", encrypted({}, { algorithm: "m.olm.v1.curve25519-aes-sha2" })],
    ["a numeric sender_key", encrypted({}, { sender_key: 5 })],
  ];

  it.each(bad)("%s → bad_event, the machine never asked, nothing kept", async (_name, event) => {
    const { fake, decryptor } = setup();
    const result = await decryptor.decrypt(event);
    expect(result).toMatchObject({ ok: false, reason: "bad_event", waiting: false });
    expect(fake.calls).toHaveLength(0);
    expect(decryptor.waitingCount).toBe(0);
  });

  it("a field that JSON cannot carry (a cycle, a BigInt) → bad_event", async () => {
    const { fake, decryptor } = setup();
    const cyclic: Record<string, unknown> = encrypted();
    cyclic.self = cyclic;
    expect(await decryptor.decrypt(cyclic)).toMatchObject({ reason: "bad_event" });
    expect(await decryptor.decrypt(encrypted({ extra: 1n }))).toMatchObject({ reason: "bad_event" });
    expect(fake.calls).toHaveLength(0);
  });

  it("names the wrong field in the message, never a value", async () => {
    const { decryptor } = setup();
    const result = await decryptor.decrypt(encrypted({}, { ciphertext: "not base64!" }));
    expect(result).toMatchObject({ message: expect.stringContaining("content.ciphertext") });
    expect(JSON.stringify(result)).not.toContain("not base64!");
  });

  it("a bad event leaves the waiting events as they were", async () => {
    const { fake, decryptor, emitted, settled } = setup();
    await decryptor.decrypt(encrypted());
    expect(decryptor.waitingCount).toBe(1);
    await decryptor.decrypt({ ...encrypted(), content: {} });
    await decryptor.decrypt(encrypted({ type: "m.room.message" }));
    expect(decryptor.waitingCount).toBe(1);
    fake.answer("session-A", async () => decrypted(fake.frees));
    await fake.roomKeysUpdated!([fake.keyInfo(ROOM, "session-A")]);
    await settled();
    expect(emitted.map((e) => e.event)).toEqual(["decrypted"]);
  });

  it("keeps unknown fields (unsigned, state_key) in what the machine gets", async () => {
    const { fake, decryptor } = setup();
    fake.answer("session-A", async () => decrypted(fake.frees));
    await decryptor.decrypt(encrypted({ unsigned: { age: 5 } }));
    expect(fake.calls[0]!.event).toMatchObject({ unsigned: { age: 5 } });
  });
});

describe("RoomDecryptor: MegolmDecryptionError codes, by enum name", () => {
  const cases: [keyof typeof DecryptionErrorCode, string, boolean][] = [
    ["MissingRoomKey", "missing_room_key", true],
    ["UnknownMessageIndex", "unknown_message_index", true],
    ["MismatchedIdentityKeys", "mismatched_identity_keys", false],
    ["UnknownSenderDevice", "unknown_sender_device", false],
    ["UnsignedSenderDevice", "unsigned_sender_device", false],
    ["SenderIdentityVerificationViolation", "sender_identity_changed", false],
    ["UnableToDecrypt", "unable_to_decrypt", false],
    ["MismatchedSender", "mismatched_sender", false],
  ];

  it("the table covers every code crypto-wasm has", () => {
    const names = Object.keys(DecryptionErrorCode).filter((k) => Number.isNaN(Number(k)));
    expect(cases.map(([name]) => name).sort()).toEqual(names.sort());
  });

  it.each(cases)("%s → %s (waiting %s); the error is freed", async (name, reason, waiting) => {
    const { fake, decryptor } = setup();
    fake.answer("session-A", () => Promise.reject(megolmError(fake.frees, DecryptionErrorCode[name])));
    const result = await decryptor.decrypt(encrypted());
    expect(result).toMatchObject({ ok: false, reason, waiting });
    expect(result).not.toHaveProperty("withheldCode");
    expect(decryptor.waitingCount).toBe(waiting ? 1 : 0);
    expect(fake.frees.get("error")).toBe(1);
    // The library's description quotes positions and, for parse errors, the event itself.
    expect(JSON.stringify(result)).not.toContain(CIPHERTEXT);
    expect(JSON.stringify(result)).not.toContain("rust says");
  });

  it("MissingRoomKey with a withheld code → withheld, with the code, still waiting", async () => {
    const { fake, decryptor } = setup();
    fake.answer("session-A", () =>
      Promise.reject(megolmError(fake.frees, DecryptionErrorCode.MissingRoomKey, "m.blacklisted")),
    );
    const result = await decryptor.decrypt(encrypted());
    expect(result).toEqual({
      ok: false,
      reason: "withheld",
      withheldCode: "m.blacklisted",
      waiting: true,
      message: expect.any(String),
    });
    expect(decryptor.waitingCount).toBe(1);
  });

  it("a rejection that is not a MegolmDecryptionError → unable_to_decrypt, logged by name only", async () => {
    const { fake, decryptor, lines } = setup();
    fake.answer("session-A", () => Promise.reject(new TypeError(`invalid type: string "${CIPHERTEXT}"`)));
    const result = await decryptor.decrypt(encrypted());
    expect(result).toMatchObject({ ok: false, reason: "unable_to_decrypt", waiting: false });
    expect(lines.join("\n")).toContain("TypeError");
    expect(lines.join("\n")).not.toContain(CIPHERTEXT);
  });
});

describe("RoomDecryptor: success", () => {
  it("gives the cleartext type and content and the sender, and frees every wasm object", async () => {
    const { fake, decryptor } = setup();
    fake.answer("session-A", async () =>
      decrypted(fake.frees, {
        strict: { color: ShieldColor.Red, code: ShieldStateCode.UnverifiedIdentity, message: "Unverified." },
        lax: { color: ShieldColor.None, code: undefined },
      }),
    );
    const result = await decryptor.decrypt(encrypted());
    expect(result).toEqual({
      ok: true,
      event: { type: "m.room.message", content: { msgtype: "m.text", body: "hello" } },
      sender: {
        userId: "@alice:example.org",
        deviceId: "ALICEDEVICE",
        curve25519Key: "curveKeyOfAlice",
        trust: "unverified",
        shield: { color: "none", code: undefined, message: undefined },
      },
    });
    for (const name of ["decrypted", "sender", "senderDevice", "strict", "lax"]) {
      expect(fake.frees.get(name), name).toBe(1);
    }
    expect(decryptor.waitingCount).toBe(0);
    expect(structuredClone(result)).toEqual(result);
  });

  // The pairs crypto-wasm gives per verification level (rust-sdk `to_shield_state_strict` / `_lax`).
  const R = ShieldColor.Red;
  const trust: [level: string, strict: Shield, lax: Shield, expected: string][] = [
    [
      "verified",
      { color: ShieldColor.None, code: undefined },
      { color: ShieldColor.None, code: undefined },
      "verified",
    ],
    [
      "unverified identity",
      { color: R, code: ShieldStateCode.UnverifiedIdentity },
      { color: ShieldColor.None, code: undefined },
      "unverified",
    ],
    [
      "unsigned device",
      { color: R, code: ShieldStateCode.UnverifiedIdentity },
      { color: R, code: ShieldStateCode.UnsignedDevice },
      "unsigned_device",
    ],
    [
      "verification violation",
      { color: R, code: ShieldStateCode.UnverifiedIdentity },
      { color: R, code: ShieldStateCode.VerificationViolation },
      "identity_changed",
    ],
    [
      "missing device",
      { color: R, code: ShieldStateCode.UnknownDevice },
      { color: R, code: ShieldStateCode.UnknownDevice },
      "unknown_device",
    ],
    [
      "insecure source",
      { color: R, code: ShieldStateCode.AuthenticityNotGuaranteed },
      { color: ShieldColor.Grey, code: ShieldStateCode.AuthenticityNotGuaranteed },
      "authenticity_not_guaranteed",
    ],
    [
      "a code newer than the mapping",
      { color: R, code: 99 as ShieldStateCode },
      { color: R, code: 99 as ShieldStateCode },
      "authenticity_not_guaranteed",
    ],
  ];

  it.each(trust)("%s → trust %s", async (_level, strict, lax, expected) => {
    const { fake, decryptor } = setup();
    fake.answer("session-A", async () => decrypted(fake.frees, { strict, lax }));
    expect(await decryptor.decrypt(encrypted())).toMatchObject({ ok: true, sender: { trust: expected } });
  });

  it("an unknown shield code shows as code unknown", async () => {
    const { fake, decryptor } = setup();
    fake.answer("session-A", async () =>
      decrypted(fake.frees, { lax: { color: ShieldColor.Red, code: 99 as ShieldStateCode } }),
    );
    expect(await decryptor.decrypt(encrypted())).toMatchObject({
      ok: true,
      sender: { shield: { color: "red", code: "unknown" } },
    });
  });

  it("the shield is the lax one, with a snake_case code and crypto-wasm's message", async () => {
    const { fake, decryptor } = setup();
    fake.answer("session-A", async () =>
      decrypted(fake.frees, {
        deviceId: undefined,
        strict: { color: ShieldColor.Red, code: ShieldStateCode.AuthenticityNotGuaranteed },
        lax: {
          color: ShieldColor.Grey,
          code: ShieldStateCode.AuthenticityNotGuaranteed,
          message: "The authenticity of this encrypted message can't be guaranteed on this device.",
        },
      }),
    );
    expect(await decryptor.decrypt(encrypted())).toMatchObject({
      ok: true,
      sender: {
        deviceId: undefined,
        trust: "authenticity_not_guaranteed",
        shield: {
          color: "grey",
          code: "authenticity_not_guaranteed",
          message: "The authenticity of this encrypted message can't be guaranteed on this device.",
        },
      },
    });
  });

  it("a mismatched sender decrypted under `untrusted` is a failure, not a red shield", async () => {
    const { fake, decryptor } = setup();
    const mismatched = { color: ShieldColor.Red, code: ShieldStateCode.MismatchedSender };
    fake.answer("session-A", async () =>
      decrypted(fake.frees, {
        deviceId: undefined,
        sender: "@mallory:example.org",
        strict: mismatched,
        lax: mismatched,
      }),
    );
    const result = await decryptor.decrypt(encrypted({ sender: "@mallory:example.org" }));
    expect(result).toMatchObject({ ok: false, reason: "mismatched_sender", waiting: false });
    expect(fake.frees.get("decrypted")).toBe(1);
  });

  it.each([
    ["not JSON", "{not json"],
    ["JSON but not an object", "[1,2]"],
    ["an object without a type", JSON.stringify({ content: {} })],
    ["content not an object", JSON.stringify({ type: "m.room.message", content: "hi" })],
  ])("a decrypted payload %s → bad_event", async (_name, payload) => {
    const { fake, decryptor } = setup();
    fake.answer("session-A", async () => decrypted(fake.frees, { event: payload }));
    expect(await decryptor.decrypt(encrypted())).toMatchObject({
      ok: false,
      reason: "bad_event",
      waiting: false,
    });
    expect(fake.frees.get("decrypted")).toBe(1);
  });

  it("a sender device flagged dehydrated → from_dehydrated_device (MSC3814), the device freed", async () => {
    const { fake, decryptor } = setup();
    fake.devices.set("@alice:example.org|ALICEDEVICE", { isDehydrated: true });
    fake.answer("session-A", async () => decrypted(fake.frees));
    expect(await decryptor.decrypt(encrypted())).toMatchObject({
      ok: false,
      reason: "from_dehydrated_device",
      waiting: false,
    });
    expect(fake.frees.get("device ALICEDEVICE")).toBe(1);
  });

  it("a known device that is not dehydrated passes", async () => {
    const { fake, decryptor } = setup();
    fake.devices.set("@alice:example.org|ALICEDEVICE", { isDehydrated: false });
    fake.answer("session-A", async () => decrypted(fake.frees));
    expect(await decryptor.decrypt(encrypted())).toMatchObject({ ok: true });
    expect(fake.frees.get("device ALICEDEVICE")).toBe(1);
  });
});

describe("RoomDecryptor: trust requirement", () => {
  it("maps options.trust, default untrusted, one reused settings object per level", async () => {
    const { fake, decryptor } = setup();
    fake.fallback = async () => decrypted(fake.frees);
    await decryptor.decrypt(encrypted());
    await decryptor.decrypt(encrypted({ event_id: "$2" }), { trust: "cross_signed_or_legacy" });
    await decryptor.decrypt(encrypted({ event_id: "$3" }), { trust: "cross_signed" });
    await decryptor.decrypt(encrypted({ event_id: "$4" }), { trust: "untrusted" });
    expect(fake.calls.map((c) => c.requirement)).toEqual([
      TrustRequirement.Untrusted,
      TrustRequirement.CrossSignedOrLegacy,
      TrustRequirement.CrossSigned,
      TrustRequirement.Untrusted,
    ]);
    expect(fake.calls[3]!.settings).toBe(fake.calls[0]!.settings);
  });

  it("an unknown trust value is the caller's mistake: RoomError invalid_argument", async () => {
    const { fake, decryptor } = setup();
    await expect(decryptor.decrypt(encrypted(), { trust: "toString" as never })).rejects.toMatchObject({
      name: "RoomError",
      code: "invalid_argument",
    });
    await expect(decryptor.decrypt(encrypted(), { trust: "everyone" as never })).rejects.toMatchObject({
      code: "invalid_argument",
    });
    expect(fake.calls).toHaveLength(0);
  });
});

describe("RoomDecryptor: waiting events", () => {
  it("retries the events of an updated session, emits decrypted once each, and forgets them", async () => {
    const { fake, decryptor, emitted, settled } = setup();
    await decryptor.decrypt(encrypted({ event_id: "$a" }));
    await decryptor.decrypt(encrypted({ event_id: "$b" }));
    await decryptor.decrypt(encrypted({ event_id: "$c" }, { session_id: "session-B" }));
    expect(decryptor.waitingCount).toBe(3);

    fake.answer(
      "session-A",
      async () => decrypted(fake.frees),
      async () => decrypted(fake.frees),
    );
    const infos = [fake.keyInfo(ROOM, "session-A"), fake.keyInfo("!other:example.org", "session-B")];
    await expect(fake.roomKeysUpdated!(infos)).resolves.toBeUndefined();
    await settled();

    expect(emitted).toEqual([
      {
        event: "decrypted",
        payload: { roomId: ROOM, eventId: "$a", result: expect.objectContaining({ ok: true }) },
      },
      {
        event: "decrypted",
        payload: { roomId: ROOM, eventId: "$b", result: expect.objectContaining({ ok: true }) },
      },
    ]);
    // session-B of another room is not the room of $c: nothing retried for it.
    expect(fake.calls.filter((c) => c.event.event_id === "$c")).toHaveLength(1);
    expect(decryptor.waitingCount).toBe(1);
    for (const name of ["info session-A", "info session-B", "info room session-A", "info room session-B"]) {
      expect(fake.frees.get(name), name).toBe(1);
    }
  });

  it("a retry that still misses the key keeps the event; one that fails for good forgets it silently", async () => {
    const { fake, decryptor, emitted, settled } = setup();
    await decryptor.decrypt(encrypted({ event_id: "$a" }));
    await decryptor.decrypt(encrypted({ event_id: "$b" }));
    fake.answer(
      "session-A",
      () => Promise.reject(megolmError(fake.frees, DecryptionErrorCode.UnknownMessageIndex)),
      () => Promise.reject(megolmError(fake.frees, DecryptionErrorCode.UnsignedSenderDevice)),
    );
    await fake.roomKeysUpdated!([fake.keyInfo(ROOM, "session-A")]);
    await settled();
    expect(emitted).toEqual([]);
    expect(decryptor.waitingCount).toBe(1);
  });

  it("keeps the trust requirement the event was decrypted with for its retries", async () => {
    const { fake, decryptor, settled } = setup();
    await decryptor.decrypt(encrypted(), { trust: "cross_signed" });
    fake.answer("session-A", async () => decrypted(fake.frees));
    await fake.roomKeysUpdated!([fake.keyInfo(ROOM, "session-A")]);
    await settled();
    expect(fake.calls.map((c) => c.requirement)).toEqual([
      TrustRequirement.CrossSigned,
      TrustRequirement.CrossSigned,
    ]);
  });

  it("retryWaiting retries the given sessions, or every waiting event", async () => {
    const { fake, decryptor, emitted } = setup();
    await decryptor.decrypt(encrypted({ event_id: "$a" }));
    await decryptor.decrypt(encrypted({ event_id: "$b" }, { session_id: "session-B" }));
    fake.fallback = async () => decrypted(fake.frees);
    await decryptor.retryWaiting(["session-B"]);
    expect(emitted.map((e) => (e.payload as { eventId: string }).eventId)).toEqual(["$b"]);
    await decryptor.retryWaiting();
    expect(emitted.map((e) => (e.payload as { eventId: string }).eventId)).toEqual(["$b", "$a"]);
    expect(decryptor.waitingCount).toBe(0);
  });

  it("a successful decrypt by the app forgets the waiting event", async () => {
    const { fake, decryptor } = setup();
    await decryptor.decrypt(encrypted());
    expect(decryptor.waitingCount).toBe(1);
    fake.answer("session-A", async () => decrypted(fake.frees));
    expect(await decryptor.decrypt(encrypted())).toMatchObject({ ok: true });
    expect(decryptor.waitingCount).toBe(0);
  });

  it("keeps at most maxWaiting, dropping the oldest first", async () => {
    const { fake, decryptor, emitted } = setup({ maxWaiting: 2 });
    await decryptor.decrypt(encrypted({ event_id: "$1" }, { session_id: "s1" }));
    await decryptor.decrypt(encrypted({ event_id: "$2" }, { session_id: "s2" }));
    // $1 is decrypted again (still no key): now the newest.
    await decryptor.decrypt(encrypted({ event_id: "$1" }, { session_id: "s1" }));
    const third = await decryptor.decrypt(encrypted({ event_id: "$3" }, { session_id: "s3" }));
    expect(third).toMatchObject({ waiting: true });
    expect(decryptor.waitingCount).toBe(2);
    fake.fallback = async () => decrypted(fake.frees);
    await decryptor.retryWaiting();
    expect(emitted.map((e) => (e.payload as { eventId: string }).eventId).sort()).toEqual(["$1", "$3"]);
  });

  it("an event that decrypts never pushes out one that waits", async () => {
    const { fake, decryptor, emitted } = setup({ maxWaiting: 1 });
    await decryptor.decrypt(encrypted({ event_id: "$1" }, { session_id: "s1" }));
    fake.answer("s2", async () => decrypted(fake.frees));
    expect(await decryptor.decrypt(encrypted({ event_id: "$2" }, { session_id: "s2" }))).toMatchObject({
      ok: true,
    });
    expect(decryptor.waitingCount).toBe(1);
    fake.fallback = async () => decrypted(fake.frees);
    await decryptor.retryWaiting(["s1"]);
    expect(emitted.map((e) => (e.payload as { eventId: string }).eventId)).toEqual(["$1"]);
  });

  it("maxWaiting 0 keeps nothing, and says so: waiting false", async () => {
    const { decryptor } = setup({ maxWaiting: 0 });
    expect(await decryptor.decrypt(encrypted())).toMatchObject({
      reason: "missing_room_key",
      waiting: false,
    });
    expect(decryptor.waitingCount).toBe(0);
  });

  it("refuses a maxWaiting that is not a non-negative integer", () => {
    const fake = new FakeMachine();
    for (const maxWaiting of [-1, 1.5, Number.NaN]) {
      expect(
        () =>
          new RoomDecryptor({
            machine: fake.machine,
            logger: capturingLogger().logger,
            emit() {},
            maxWaiting,
          }),
      ).toThrow(expect.objectContaining({ code: "invalid_argument" }));
    }
  });

  it("emits keyWithheld for the waiting events of a withheld session and keeps them waiting", async () => {
    const { fake, decryptor, emitted } = setup();
    await decryptor.decrypt(encrypted({ event_id: "$a" }));
    await decryptor.decrypt(encrypted({ event_id: "$b" }));
    await fake.withheld!([
      fake.withheldInfo(ROOM, "session-A", "m.unverified"),
      fake.withheldInfo(ROOM, "session-nobody-waits-for", "m.unverified"),
    ]);
    expect(emitted).toEqual([
      {
        event: "keyWithheld",
        payload: {
          roomId: ROOM,
          sessionId: "session-A",
          sender: "@alice:example.org",
          code: "m.unverified",
          eventIds: ["$a", "$b"],
        },
      },
    ]);
    expect(decryptor.waitingCount).toBe(2);
    for (const name of [
      "withheld session-A",
      "withheld session-nobody-waits-for",
      "withheld sender session-A",
    ]) {
      expect(fake.frees.get(name), name).toBe(1);
    }
  });
});

describe("RoomDecryptor: serialised retries", () => {
  it("never runs two decrypts of the same event at once", async () => {
    const { fake, decryptor, settled } = setup();
    await decryptor.decrypt(encrypted());
    fake.maxInFlight = 0;
    const calls = [decryptor.decrypt(encrypted()), decryptor.decrypt(encrypted())];
    void fake.roomKeysUpdated!([fake.keyInfo(ROOM, "session-A")]);
    calls.push(decryptor.decrypt(encrypted()));
    await Promise.all(calls);
    await settled();
    expect(fake.maxInFlight).toBe(1);
    expect(fake.calls.length).toBe(5);
  });

  it("a key arriving while the app's decrypt runs gets the event retried after it", async () => {
    const { fake, decryptor, emitted, settled } = setup();
    let arrive!: () => void;
    fake.answer(
      "session-A",
      async () => {
        // The key lands just after the machine looked: this attempt still misses it.
        arrive();
        throw megolmError(fake.frees, DecryptionErrorCode.MissingRoomKey);
      },
      async () => decrypted(fake.frees),
    );
    arrive = () => void fake.roomKeysUpdated!([fake.keyInfo(ROOM, "session-A")]);
    const first = await decryptor.decrypt(encrypted());
    expect(first).toMatchObject({ reason: "missing_room_key", waiting: true });
    await settled();
    expect(emitted.map((e) => e.event)).toEqual(["decrypted"]);
    expect(decryptor.waitingCount).toBe(0);
  });

  it("never rejects into the machine's callbacks: a throwing listener or machine is logged", async () => {
    const { fake, decryptor, emitted, lines, settled } = setup({ emitThrows: true });
    await decryptor.decrypt(encrypted({ event_id: "$a" }));
    await decryptor.decrypt(encrypted({ event_id: "$b" }, { session_id: "session-B" }));
    fake.answer("session-A", async () => decrypted(fake.frees));
    fake.answer("session-B", () => {
      throw new Error("machine is closed");
    });
    await expect(
      fake.roomKeysUpdated!([fake.keyInfo(ROOM, "session-A"), fake.keyInfo(ROOM, "session-B")]),
    ).resolves.toBeUndefined();
    await settled();
    await expect(
      fake.withheld!([fake.withheldInfo(ROOM, "session-A", "m.unverified")]),
    ).resolves.toBeUndefined();
    // A broken info object (a wasm object already freed) is logged too.
    const broken = {
      get roomId(): never {
        throw new Error("null pointer passed to rust");
      },
      free() {},
    } as unknown as RoomKeyInfo;
    await expect(fake.roomKeysUpdated!([broken])).resolves.toBeUndefined();
    await expect(fake.withheld!([broken as unknown as RoomKeyWithheldInfo])).resolves.toBeUndefined();
    expect(emitted.map((e) => e.event)).toEqual(["decrypted"]);
    expect(lines.join("\n")).toContain("listener failed");
    expect(lines.join("\n")).not.toContain(CIPHERTEXT);
  });
});

describe("RoomDecryptor: close", () => {
  it("drops the waiting events; later callbacks do nothing; decrypt rejects", async () => {
    const { fake, decryptor, emitted } = setup();
    await decryptor.decrypt(encrypted());
    decryptor.close();
    decryptor.close();
    expect(decryptor.waitingCount).toBe(0);
    const callsBefore = fake.calls.length;
    fake.fallback = async () => decrypted(fake.frees);
    await fake.roomKeysUpdated!([fake.keyInfo(ROOM, "session-A")]);
    await fake.withheld!([fake.withheldInfo(ROOM, "session-A", "m.unverified")]);
    await decryptor.retryWaiting();
    expect(fake.calls.length).toBe(callsBefore);
    expect(emitted).toEqual([]);
    expect(fake.frees.get("info session-A")).toBe(1);
    expect(fake.frees.get("withheld session-A")).toBe(1);
    await expect(decryptor.decrypt(encrypted())).rejects.toMatchObject({
      name: "AbortError",
      code: "aborted",
    });
  });

  it("closes with the owner's signal and rejects with its reason", async () => {
    const fake = new FakeMachine();
    const owner = new AbortController();
    const decryptor = new RoomDecryptor({
      machine: fake.machine,
      logger: capturingLogger().logger,
      emit() {},
      signal: owner.signal,
    });
    await decryptor.decrypt(encrypted());
    const reason = Object.assign(new Error("closed"), { code: "client_closed" });
    owner.abort(reason);
    expect(decryptor.waitingCount).toBe(0);
    await expect(decryptor.decrypt(encrypted())).rejects.toBe(reason);
  });

  it("an event whose decrypt was under way at close is not kept and says waiting false", async () => {
    const { fake, decryptor } = setup();
    fake.answer("session-A", async () => {
      decryptor.close();
      throw megolmError(fake.frees, DecryptionErrorCode.MissingRoomKey);
    });
    expect(await decryptor.decrypt(encrypted())).toMatchObject({
      reason: "missing_room_key",
      waiting: false,
    });
    expect(decryptor.waitingCount).toBe(0);
  });
});

describe("RoomDecryptor: events", () => {
  it("its emit fits a TypedEmitter of the client's RoomsEvents", async () => {
    const emitter = new TypedEmitter<RoomsEvents>();
    const fake = new FakeMachine();
    const heard: RoomsEvents["decrypted"][] = [];
    emitter.on("decrypted", (payload) => heard.push(payload));
    const decryptor = new RoomDecryptor({
      machine: fake.machine,
      logger: capturingLogger().logger,
      emit: (event, payload) => emitter.emit(event, payload),
    });
    await decryptor.decrypt(encrypted());
    fake.answer("session-A", async () => decrypted(fake.frees));
    await decryptor.retryWaiting();
    expect(heard).toHaveLength(1);
    const result: RoomDecryptResult = heard[0]!.result;
    expect(result.ok).toBe(true);
    // The payload types are one and the same.
    const same: RoomDecryptionEvents["keyWithheld"] = {} as RoomsEvents["keyWithheld"];
    expect(same).toEqual({});
  });
});
