import { type OlmMachine, RoomId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { isValidUserId, toUserId } from "../crypto/identifiers.js";
import { sendOutgoingRequest } from "../crypto/send-outgoing-request.js";
import { isAbortError } from "../errors/abort-error.js";
import { errorSummary } from "../errors/error-summary.js";
import { TypedEmitter } from "../events/emitter.js";
import { forwardPrefixed, type Prefixed } from "../events/prefixed.js";
import { matrixPath } from "../http/path.js";
import { roomSendResponseSchema } from "../http/schemas/rooms.js";
import type { MatrixHttp } from "../http/types.js";
import type { Logger } from "../logger.js";
import {
  type AppliedRecipient,
  appliedFromRequests,
  mergeApplied,
  type PlanDifference,
  planDifferences,
} from "./applied-plan.js";
import { type DisplayedDevice, displayDevices } from "./device-display.js";
import { readIdentity, readUserFacts } from "./device-facts.js";
import type { RoomsEvents } from "./events.js";
import { OlmSessions } from "./olm-sessions.js";
import {
  type DeviceFacts,
  type IdentityFacts,
  planRecipients,
  type RecipientPlan,
  SHARING_STRATEGIES,
  type SharingStrategy,
} from "./recipient-plan.js";
import { type EncryptedRoomEvent, RoomDecryptor, type RoomDecryptResult } from "./room-decryption.js";
import {
  encryptionTargets,
  type HistoryVisibility,
  type RoomEncryption,
  roomEncryptionFrom,
} from "./room-encryption.js";
import { planMismatch, RoomError } from "./room-errors.js";
import { encryptionSettings } from "./room-key-share.js";
import { fetchMembers, fetchStateContent } from "./room-server.js";

/** The client's room events: `rooms.decrypted`, `rooms.keyWithheld`. */
export type RoomsModuleEvents = Prefixed<"rooms", RoomsEvents>;

/** A room as the app knows it from its own sync; every field replaces what the SDK had. */
export interface RoomUpdate {
  /** The `m.room.encryption` content; `null` for a room without it. */
  encryption?: Record<string, unknown> | null;
  /** The `m.room.history_visibility` content (`{ history_visibility: "shared" }`). */
  historyVisibility?: Record<string, unknown> | null;
  /** Every member's membership (`join`, `invite`, `leave`, `ban`, `knock`), by user id. */
  members?: Readonly<Record<string, string>>;
}

export interface RoomPlanOptions {
  /** Overrides the client's `rooms.sharingStrategy` for this call. */
  strategy?: SharingStrategy;
  signal?: AbortSignal;
}

export interface RoomSendOptions extends RoomPlanOptions {
  /**
   * The transaction id (spec, "Transaction identifiers"): the same id sends the event once, so an
   * app retrying after a lost response passes the id of the first try. Default: a new random id.
   */
  txnId?: string;
  /**
   * The plan the user saw (from `planRecipients`): the send fails with `plan_mismatch`, sending
   * nothing, when the room key would go anywhere else — a device blacklisted, added or changed since.
   */
  expectedPlan?: RecipientPlan;
}

export interface RoomSendResult {
  eventId: string;
  txnId: string;
  /** The Megolm session the event was encrypted with. */
  sessionId: string;
  /** The prediction the send was checked against. */
  plan: RecipientPlan;
  /** What the crypto layer did, over every send of this session so far (see `AppliedRecipient`). */
  applied: AppliedRecipient[];
}

/** `client.rooms`: encrypted room messages with a recipient plan the app can see. */
export interface RoomsApi {
  /**
   * Tells the SDK a room's encryption state and members from the app's own sync; each field given
   * replaces what it had. The members the room key goes to become tracked users, so the crypto
   * layer follows their device lists (and knows their identities when their messages decrypt).
   */
  updateRoom(roomId: string, update: RoomUpdate): Promise<void>;
  /** Forgets what `updateRoom` said; the SDK asks the server again. */
  forgetRoom(roomId: string): Promise<void>;
  /** The room's encryption settings (`room_not_encrypted`, `unsupported_algorithm` otherwise). */
  encryption(roomId: string, options?: { signal?: AbortSignal }): Promise<RoomEncryption>;
  /**
   * Who would get the room key and who not, and why. Prepares a send: tracks the members, queries
   * their keys and sets up Olm sessions, so the plan also knows which devices cannot be reached.
   */
  planRecipients(roomId: string, options?: RoomPlanOptions): Promise<RecipientPlan>;
  /**
   * Encrypts and sends one event: queries keys, claims sessions, shares the room key as planned,
   * sends the to-device messages, then the event. Rejects with `sharing_refused` (the strategy
   * refuses), `plan_mismatch` (the crypto layer would share otherwise than planned; nothing sent),
   * `send_failed` (a request failed; a retry with the same `txnId` continues).
   */
  send(
    roomId: string,
    type: string,
    content: Record<string, unknown>,
    options?: RoomSendOptions,
  ): Promise<RoomSendResult>;
  /** The cleartext with its sender's device and trust, or why not; never throws for a bad event. */
  decrypt(event: unknown, options?: Parameters<RoomDecryptor["decrypt"]>[1]): Promise<RoomDecryptResult>;
  /**
   * A user's devices as the crypto layer knows them, labelled by MSC3814's display rule: a single
   * dehydrated device is "the user's offline device"; several are shown as ordinary devices.
   */
  devices(userId: string): Promise<DisplayedDevice<DeviceFacts>[]>;
}

export interface RoomsParts {
  machine: OlmMachine;
  http: MatrixHttp;
  userId: string;
  deviceId: string;
  strategy: SharingStrategy | undefined;
  runOutgoingRequests: () => Promise<void>;
  logger: Logger;
  /** The owner's lifetime. */
  signal: AbortSignal;
  assertOpen: () => void;
  emit: (event: string, payload: unknown) => void;
  /**
   * Resyncs those of `userIds` whose device lists are known to be stale, waiting a bounded time;
   * never rejects for a slow server. A sender encrypting to a stale list leaves new devices out, so
   * a send asks first. Omitted: no such step.
   */
  ensureFresh?: ((userIds: readonly string[], signal: AbortSignal) => Promise<unknown>) | undefined;
  /** Shown every result `decrypt` returns, after it was computed (another module's detectors). */
  decrypted?: ((event: unknown, result: RoomDecryptResult) => void) | undefined;
  /**
   * Whether `userId`'s key queries fail for now (their server, or this client's, is backed off).
   * Their identity is then taken as last read: crypto-wasm cannot learn a newer one meanwhile, and
   * its `getIdentity` would wait a second for the query that does not come. Omitted: never.
   */
  unreachable?: ((userId: string) => boolean) | undefined;
}

/** Identities remembered for users whose queries fail (`RoomsParts.unreachable`), at most. */
const MAX_REMEMBERED_IDENTITIES = 10_000;

/**
 * How long a device read waits for a key query of that user still in flight: not at all. Every
 * read follows a pass of the outgoing-request loop that sent the queries tracking queued; a query
 * still due then is one that failed (a member's server unreachable), and waiting on it would only
 * delay every send to the room.
 */
const DEVICE_QUERY_WAIT_SECS = undefined;

interface KnownRoom {
  encryption?: Record<string, unknown> | null;
  historyVisibility?: Record<string, unknown> | null;
  members?: Map<string, string>;
}

interface Prepared {
  room: RoomEncryption;
  targets: string[];
  plan: RecipientPlan;
}

export class Rooms implements RoomsApi {
  readonly #parts: RoomsParts;
  readonly #events: TypedEmitter<RoomsEvents>;
  readonly #decryptor: RoomDecryptor;
  readonly #sessions = new OlmSessions();
  /** The last identity read of each user, for when their queries fail (`#identityOf`). */
  readonly #identities = new Map<string, IdentityFacts | undefined>();
  readonly #known = new Map<string, KnownRoom>();
  /** Per room: what the current outbound session was applied to, across sends. */
  readonly #applied = new Map<string, { sessionId: string; recipients: Map<string, AppliedRecipient> }>();
  /** crypto-wasm shares one room's key one call at a time; sends of a room queue here. */
  readonly #queues = new Map<string, Promise<unknown>>();
  readonly #strategy: SharingStrategy;
  /** Users this client tracked (members of rooms it sent to or was told of, senders it decrypted). */
  readonly #tracked = new Set<string>();
  /** Calls outside the queues that use the machine; `close()` waits for them. */
  readonly #inFlight = new Set<Promise<void>>();

  constructor(parts: RoomsParts) {
    this.#parts = parts;
    this.#strategy = parts.strategy ?? "all_devices";
    this.#events = new TypedEmitter<RoomsEvents>(parts.logger);
    forwardPrefixed(this.#events, "rooms", parts.emit);
    this.#decryptor = new RoomDecryptor({
      machine: parts.machine,
      logger: parts.logger,
      emit: (event, payload) => this.#events.emit(event, payload as never),
      signal: parts.signal,
    });
  }

  async updateRoom(roomId: string, update: RoomUpdate): Promise<void> {
    this.#parts.assertOpen();
    checkRoomId(roomId);
    if (typeof update !== "object" || update === null) throw invalid("update must be an object");
    const members = update.members === undefined ? undefined : checkMembers(update.members);
    const known = { ...this.#known.get(roomId) };
    if (update.encryption !== undefined) known.encryption = checkContent(update.encryption, "encryption");
    if (update.historyVisibility !== undefined) {
      known.historyVisibility = checkContent(update.historyVisibility, "historyVisibility");
    }
    if (members !== undefined) known.members = members;
    this.#known.set(roomId, known);
    if (members !== undefined) {
      const visibility = (known.historyVisibility?.history_visibility ?? "shared") as HistoryVisibility;
      await this.#guarded(() => this.#track(encryptionTargets(members, visibility)));
    }
  }

  async forgetRoom(roomId: string): Promise<void> {
    this.#parts.assertOpen();
    checkRoomId(roomId);
    this.#known.delete(roomId);
  }

  async encryption(roomId: string, options: { signal?: AbortSignal } = {}): Promise<RoomEncryption> {
    this.#parts.assertOpen();
    checkRoomId(roomId);
    const signal = this.#signal(options.signal);
    return this.#guarded(() => this.#encryption(roomId, signal));
  }

  async planRecipients(roomId: string, options: RoomPlanOptions = {}): Promise<RecipientPlan> {
    this.#parts.assertOpen();
    checkRoomId(roomId);
    const strategy = checkStrategy(options.strategy ?? this.#strategy);
    const signal = this.#signal(options.signal);
    return this.#inQueue(roomId, async () => (await this.#prepare(roomId, strategy, signal)).plan);
  }

  async send(
    roomId: string,
    type: string,
    content: Record<string, unknown>,
    options: RoomSendOptions = {},
  ): Promise<RoomSendResult> {
    this.#parts.assertOpen();
    checkRoomId(roomId);
    if (typeof type !== "string" || type === "") throw invalid("type must be a non-empty string");
    // The cleartext's type is what the receiver sees after decrypting; an encrypted type inside
    // an encrypted event means nothing to anyone.
    if (type === "m.room.encrypted")
      throw invalid("type must be the cleartext event's type, not m.room.encrypted");
    checkContent(content, "content");
    checkSize(roomId, type, content);
    const strategy = checkStrategy(options.strategy ?? this.#strategy);
    const txnId = options.txnId ?? randomTxnId();
    if (typeof txnId !== "string" || txnId === "") throw invalid("txnId must be a non-empty string");
    const expected = options.expectedPlan;
    if (expected !== undefined) {
      if (!isPlan(expected)) throw invalid("expectedPlan is not a plan");
      if (expected.roomId !== roomId) throw invalid("expectedPlan is another room's plan");
      if (expected.strategy !== strategy) throw invalid("expectedPlan was made for another sharing strategy");
      if (expected.refusal !== undefined)
        throw invalid("expectedPlan refuses to send: resolve its refusal and plan again");
    }
    const plaintext = JSON.stringify(content);
    const signal = this.#signal(options.signal);
    return this.#inQueue(roomId, () =>
      this.#send(roomId, type, plaintext, { strategy, txnId, expected, signal }),
    );
  }

  async decrypt(
    event: unknown,
    options?: Parameters<RoomDecryptor["decrypt"]>[1],
  ): Promise<RoomDecryptResult> {
    this.#parts.assertOpen();
    const result = await this.#guarded(async () => {
      // The sender's cross-signing identity is known only once they are tracked and queried;
      // without it a properly signed sender's device reads as unsigned (a red shield). Once per
      // sender of an encrypted room event, as other clients track the members of encrypted rooms.
      const { type, sender } = (event ?? {}) as { type?: unknown; sender?: unknown };
      if (type === "m.room.encrypted" && typeof sender === "string" && !this.#tracked.has(sender)) {
        await this.#track([sender]);
      }
      return this.#decryptor.decrypt(event as EncryptedRoomEvent, options);
    });
    try {
      this.#parts.decrypted?.(event, result);
    } catch (error) {
      this.#parts.logger.warn("an observer of decrypt results failed", errorSummary(error));
    }
    return result;
  }

  async devices(userId: string): Promise<DisplayedDevice<DeviceFacts>[]> {
    this.#parts.assertOpen();
    if (typeof userId !== "string" || !isValidUserId(userId)) throw invalid("userId must be a user id");
    return this.#guarded(async () => {
      // A user not tracked yet is queried first, as a send to them would.
      await this.#track([userId]);
      const [user] = await readUserFacts(
        this.#parts.machine,
        this.#parts,
        [userId],
        (u, d) => this.#sessions.state(u, d),
        DEVICE_QUERY_WAIT_SECS,
        this.#identityOf,
      );
      return displayDevices(user?.devices ?? []);
    });
  }

  /** Waits for the calls in flight (aborted with the owner's signal), then drops waiting events. */
  async close(): Promise<void> {
    await Promise.all([...this.#queues.values(), ...this.#inFlight]);
    this.#decryptor.close();
  }

  /**
   * Runs a call that reaches the machine outside the per-room queues: `close()` waits for it
   * before the machine closes, and whatever step the close interrupted, it rejects with the
   * close's reason.
   */
  async #guarded<T>(job: () => Promise<T>): Promise<T> {
    const { signal } = this.#parts;
    const running = (async () => {
      signal.throwIfAborted();
      try {
        return await job();
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        throw error;
      }
    })();
    const settled = running.then(
      () => undefined,
      () => undefined,
    );
    this.#inFlight.add(settled);
    void settled.then(() => this.#inFlight.delete(settled));
    return running;
  }

  async #send(
    roomId: string,
    type: string,
    plaintext: string,
    call: {
      strategy: SharingStrategy;
      txnId: string;
      expected: RecipientPlan | undefined;
      signal: AbortSignal;
    },
  ): Promise<RoomSendResult> {
    const { machine } = this.#parts;
    const { room, targets, plan } = await this.#prepare(roomId, call.strategy, call.signal);
    if (plan.refusal) {
      throw new RoomError(
        "sharing_refused",
        `the ${plan.strategy} strategy refuses to share: ${plan.refusal.reason}`,
        { details: { plan } },
      );
    }
    // crypto-wasm borrows the id in each call below; one object serves them all.
    const wasmRoomId = new RoomId(roomId);
    try {
      // A session this client has no record of was shared before (another run of the app): who
      // holds it is unknown, so a plan the user confirmed cannot be checked against it. A new
      // session is; only its own shares count.
      if (call.expected !== undefined && !this.#applied.has(roomId)) {
        await cryptoStep("discarding the room's session", roomId, machine.invalidateGroupSession(wasmRoomId));
      }
      const settings = encryptionSettings(room, call.strategy);
      let requests: Awaited<ReturnType<OlmMachine["shareRoomKey"]>>;
      try {
        requests = await machine.shareRoomKey(wasmRoomId, targets.map(toUserId), settings);
      } catch (cause) {
        // The prediction had no refusal, so the crypto layer decided otherwise than planned.
        throw planMismatch(plan, [], [], cause);
      } finally {
        settings.free();
      }
      try {
        return await this.#shareAndSend(wasmRoomId, roomId, type, plaintext, call, plan, requests);
      } finally {
        for (const request of requests) request.free();
      }
    } finally {
      wasmRoomId.free();
    }
  }

  async #shareAndSend(
    wasmRoomId: RoomId,
    roomId: string,
    type: string,
    plaintext: string,
    call: { txnId: string; expected: RecipientPlan | undefined; signal: AbortSignal },
    plan: RecipientPlan,
    requests: Awaited<ReturnType<OlmMachine["shareRoomKey"]>>,
  ): Promise<RoomSendResult> {
    const { machine, http } = this.#parts;
    const now = appliedFromRequests(requests);
    const encrypted = JSON.parse(
      await cryptoStep("encrypting the event", roomId, machine.encryptRoomEvent(wasmRoomId, type, plaintext)),
    ) as { session_id?: unknown };
    const sessionId = typeof encrypted.session_id === "string" ? encrypted.session_id : "";
    const record = this.#applied.get(roomId);
    const earlier = record?.sessionId === sessionId ? record.recipients : new Map<string, AppliedRecipient>();
    // Everyone who holds the session, not only this call's shares: a plan that withholds from a
    // device an earlier send of the session reached is contradicted just the same.
    const holders = [...mergeApplied({ ...plan, devices: [] }, earlier, now).values()];
    const checked = call.expected ?? plan;
    const differences: PlanDifference[] = planDifferences(checked, holders);
    // An app's plan can be stale; our own prediction disagreeing means the rules drifted from
    // the crypto layer's, which must never pass silently either.
    const own = call.expected === undefined ? [] : planDifferences(plan, holders);
    if (differences.length > 0 || own.length > 0) {
      // The session's pending key shares were never sent; discarding it keeps them from being
      // sent by a later call.
      await cryptoStep("discarding the room's session", roomId, machine.invalidateGroupSession(wasmRoomId));
      this.#applied.delete(roomId);
      throw differences.length > 0
        ? planMismatch(checked, holders, differences)
        : planMismatch(plan, holders, own);
    }
    try {
      for (const request of requests) await sendOutgoingRequest(machine, http, request, call.signal);
    } catch (cause) {
      throw sendFailed("the room key could not be sent to every device", roomId, cause);
    }
    const recipients = mergeApplied(plan, earlier, now);
    this.#applied.set(roomId, { sessionId, recipients });
    let eventId: string;
    try {
      ({ event_id: eventId } = await http.request({
        method: "PUT",
        path: matrixPath`/_matrix/client/v3/rooms/${roomId}/send/m.room.encrypted/${call.txnId}`,
        body: encrypted,
        schema: roomSendResponseSchema,
        retry: "safe",
        signal: call.signal,
      }));
    } catch (cause) {
      throw sendFailed("the encrypted event could not be sent", roomId, cause);
    }
    return { eventId, txnId: call.txnId, sessionId, plan, applied: [...recipients.values()] };
  }

  /** Tracks the members, queries their keys, claims sessions, and predicts the plan. */
  async #prepare(roomId: string, strategy: SharingStrategy, signal: AbortSignal): Promise<Prepared> {
    const { machine, http } = this.#parts;
    const room = await this.#encryption(roomId, signal);
    const members =
      this.#known.get(roomId)?.members ?? (await readRoom(roomId, fetchMembers(http, roomId, signal)));
    // A member id crypto-wasm refuses cannot have devices it knows: left out, not fatal.
    const targets = encryptionTargets(members, room.historyVisibility).filter(isValidUserId);
    await this.#track(targets);
    signal.throwIfAborted();
    // Before the claim: a device a resync brings in needs its Olm session too.
    if (this.#parts.ensureFresh !== undefined) {
      try {
        await this.#parts.ensureFresh(targets, signal);
      } catch (error) {
        // A list that could not be refreshed is encrypted to as it is known: never a failed send.
        if (signal.aborted) throw error;
        this.#parts.logger.warn("refreshing the members' device lists failed", errorSummary(error));
      }
      signal.throwIfAborted();
    }
    try {
      await this.#sessions.claim(machine, http, targets, signal);
    } catch (cause) {
      if (isAbortError(cause)) throw cause;
      throw sendFailed("Olm sessions with the members' devices could not be set up", roomId, cause);
    }
    const olmSession = (userId: string, deviceId: string) => this.#sessions.state(userId, deviceId);
    const [users, ownIdentity] = await Promise.all([
      readUserFacts(machine, this.#parts, targets, olmSession, DEVICE_QUERY_WAIT_SECS, this.#identityOf),
      readIdentity(machine, this.#parts.userId),
    ]);
    return { room, targets, plan: planRecipients({ roomId, strategy, ownIdentity, users }) };
  }

  /** A user's identity: read from the machine, or as last read while their queries fail. */
  readonly #identityOf = async (userId: string): Promise<IdentityFacts | undefined> => {
    if (this.#identities.has(userId) && this.#parts.unreachable?.(userId) === true) {
      return this.#identities.get(userId);
    }
    const identity = await readIdentity(this.#parts.machine, userId);
    this.#identities.delete(userId);
    this.#identities.set(userId, identity);
    if (this.#identities.size > MAX_REMEMBERED_IDENTITIES) {
      this.#identities.delete(this.#identities.keys().next().value as string);
    }
    return identity;
  };

  async #encryption(roomId: string, signal: AbortSignal): Promise<RoomEncryption> {
    const known = this.#known.get(roomId);
    const { http } = this.#parts;
    const encryption =
      known?.encryption !== undefined
        ? known.encryption
        : await readRoom(roomId, fetchStateContent(http, roomId, "m.room.encryption", signal));
    const visibility =
      known?.historyVisibility !== undefined
        ? known.historyVisibility
        : await readRoom(roomId, fetchStateContent(http, roomId, "m.room.history_visibility", signal));
    return roomEncryptionFrom(roomId, encryption ?? null, visibility ?? null);
  }

  /**
   * Tracks `userIds` and sends the key queries that queues; their failures are retried by the
   * outgoing-request loop, and what the machine knows once this pass is over is what callers read.
   */
  async #track(userIds: readonly string[]): Promise<void> {
    // Tracking a user again changes nothing; the loop's pass still runs, to send what is due.
    const untracked = userIds.filter((u) => !this.#tracked.has(u) && isValidUserId(u));
    if (untracked.length > 0) {
      await this.#parts.machine.updateTrackedUsers(untracked.map(toUserId));
      for (const userId of untracked) this.#tracked.add(userId);
    }
    await this.#parts.runOutgoingRequests();
  }

  #inQueue<T>(roomId: string, job: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(roomId) ?? Promise.resolve();
    // A job queued behind one that was running at close must not reach the closed machine.
    const run = () => this.#guarded(job);
    const next = previous.then(run, run);
    const settled = next.catch(() => undefined);
    this.#queues.set(roomId, settled);
    void settled.then(() => {
      if (this.#queues.get(roomId) === settled) this.#queues.delete(roomId);
    });
    return next;
  }

  #signal(caller: AbortSignal | undefined): AbortSignal {
    return caller ? AbortSignal.any([caller, this.#parts.signal]) : this.#parts.signal;
  }
}

/** A crypto call of the send; its failure is `send_failed` with the cause. */
async function cryptoStep<T>(what: string, roomId: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (cause) {
    throw sendFailed(`${what} failed`, roomId, cause);
  }
}

/**
 * The spec caps an event at 65,535 bytes of canonical JSON. Megolm turns the cleartext event into
 * unpadded base64 (4/3 the size) inside an envelope, so a cleartext over 48,000 bytes would be
 * refused by the server — after its room key went out. Refused here first.
 */
const MAX_CLEARTEXT_BYTES = 48_000;

function checkSize(roomId: string, type: string, content: Record<string, unknown>): void {
  const bytes = new TextEncoder().encode(JSON.stringify({ type, content, room_id: roomId })).length;
  if (bytes > MAX_CLEARTEXT_BYTES) {
    throw new RoomError(
      "invalid_argument",
      `the event is too large to encrypt (${bytes} bytes of JSON, at most ${MAX_CLEARTEXT_BYTES})`,
      {
        details: { bytes, limit: MAX_CLEARTEXT_BYTES },
      },
    );
  }
}

/** A read of the room's state or members; its failure says so, with the server's answer as cause. */
async function readRoom<T>(roomId: string, read: Promise<T>): Promise<T> {
  try {
    return await read;
  } catch (cause) {
    if (isAbortError(cause)) throw cause;
    throw new RoomError("room_unavailable", "the room's state or members could not be read", {
      cause,
      details: { roomId },
    });
  }
}

function sendFailed(message: string, roomId: string, cause: unknown): RoomError {
  return new RoomError("send_failed", message, { cause, details: { roomId } });
}

function invalid(message: string): RoomError {
  return new RoomError("invalid_argument", message);
}

function checkRoomId(roomId: unknown): asserts roomId is string {
  if (typeof roomId !== "string" || !/^![^:]+:.+$/.test(roomId))
    throw invalid("roomId must be a room id (!id:server)");
}

function checkStrategy(strategy: unknown): SharingStrategy {
  if (!SHARING_STRATEGIES.includes(strategy as SharingStrategy)) {
    throw invalid(`strategy must be one of ${SHARING_STRATEGIES.join(", ")}`);
  }
  return strategy as SharingStrategy;
}

/** A JSON object (or, for state the app reports absent, `null`). */
function checkContent<T extends Record<string, unknown> | null>(value: T, what: string): T {
  if (value === null && what !== "content") return value;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(`${what} must be an object`);
  }
  if (!isJson(value, 0))
    throw invalid(`${what} must be JSON: objects, arrays, strings, finite numbers, booleans, null`);
  return value;
}

/** Plain JSON all the way down (no functions, `undefined`, bigints, cycles or class instances). */
function isJson(value: unknown, depth: number): boolean {
  if (depth > 100) return false;
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((v) => isJson(v, depth + 1));
  if (typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(value).every((v) => isJson(v, depth + 1));
}

function checkMembers(members: unknown): Map<string, string> {
  if (typeof members !== "object" || members === null || Array.isArray(members)) {
    throw invalid("members must map user ids to memberships");
  }
  const out = new Map<string, string>();
  for (const [userId, membership] of Object.entries(members)) {
    if (!isValidUserId(userId) || typeof membership !== "string") {
      throw invalid("members must map user ids to memberships");
    }
    out.set(userId, membership);
  }
  return out;
}

function isPlan(value: unknown): value is RecipientPlan {
  const plan = value as RecipientPlan | null;
  return (
    typeof plan === "object" &&
    plan !== null &&
    SHARING_STRATEGIES.includes(plan.strategy) &&
    Array.isArray(plan.devices) &&
    plan.devices.every(
      (d) =>
        typeof d?.userId === "string" && typeof d.deviceId === "string" && typeof d.decision === "string",
    )
  );
}

/** 128 random bits: a transaction id no other send of this device reuses. */
function randomTxnId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return `m${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
