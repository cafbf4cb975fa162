import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import { isValidUserId } from "../crypto/identifiers.js";
import { type KeyQueryLoop, refreshDeviceLists } from "../crypto/refresh-device-lists.js";
import { type ErrorInfo, toErrorInfo } from "../errors/error-info.js";
import { errorSummary } from "../errors/error-summary.js";
import { isMatrixApiError } from "../errors/matrix-api-error.js";
import { SdkError } from "../errors/sdk-error.js";
import { TypedEmitter } from "../events/emitter.js";
import { forwardPrefixed } from "../events/prefixed.js";
import { type Logger, prefixedLogger } from "../logger.js";
import type { Clock } from "../time/clock.js";
import { Coalescer } from "./coalescer.js";
import {
  type DecryptOutcome,
  detectPositionLost,
  detectQueryFailures,
  detectReport,
  detectUnknownSender,
  detectUnsignedDevices,
  type ProcessedToDevice,
  type SenderObservation,
  senderOfRoomEvent,
  sendersOfToDevice,
  wantsServerRefresh,
} from "./detectors.js";
import { type EvidenceMachine, listedDevices, signingSnapshot, trackedUserIds } from "./device-evidence.js";
import type { DeviceListErrorCode } from "./errors.js";
import type { DeviceListsEvents } from "./events.js";
import { EvidenceMemo, MAX_CLAIMS_PER_USER } from "./evidence-memo.js";
import { Msc2638Client, type Msc2638Parts, type RefreshAnswer } from "./msc2638.js";
import { type DeviceListsSettings, MAX_TIMEOUT_MS } from "./options.js";
import { type QueryMark, sentAfter, settledAfter } from "./query-order.js";
import { ResyncRateLimit } from "./rate-limit.js";
import { type Arrival, RefreshArrivals } from "./refresh-arrivals.js";
import { RequeryBatcher } from "./requery-batcher.js";
import { ServerBackoff, type ServerFailure } from "./server-backoff.js";
import { serverNameOf } from "./server-name.js";
import {
  type DeviceListStaleReason,
  type DeviceListTrust,
  needsResync,
  reasonsOf,
  reduceTrust,
  sameTrust,
  type TrustInput,
} from "./trust.js";

/** Options of `ensureFresh`. */
export interface EnsureFreshOptions {
  /**
   * The longest wait, ms on the client's clock (at most 2^31 − 1); the trust as it stands then is
   * returned.
   */
  timeoutMs: number;
  /** Stops waiting (the resync goes on); the trust as it stands then is returned. */
  signal?: AbortSignal;
}

/**
 * `client.deviceLists`: how current each user's device list is, and resyncs. A sender encrypting
 * to a stale list leaves new devices out, and a homeserver can keep a remote user's list stale for
 * years (Synapse serves `keys/query` for remote users from its cache). The SDK watches for signs
 * of staleness and resyncs by itself; the app can read the trust, report what its users say, and
 * ask for resyncs. Every result is plain data.
 */
export interface DeviceListsApi {
  /** The user's trust now; `unknown` for a user never judged. Throws `invalid_argument` for a bad id. */
  trust(userId: string): DeviceListTrust;
  /** Every user judged so far (not `unknown`), by user id. */
  trustAll(): DeviceListTrust[];
  /**
   * The app's evidence: e.g. the user says they have a device we don't see. Marks the list stale
   * (reason `reported`, with `note` cut to 200 characters) and resyncs it in the background;
   * returns the trust right after. Rate-limited like every resync.
   */
  report(userId: string, note?: string): DeviceListTrust;
  /**
   * Resyncs these users: by MSC2638 where the homeserver supports it (for users of other
   * servers), else by re-querying their keys — all of them in as few `keys/query` as the crypto
   * layer needs (250 users each). A user in flight joins that resync; one resynced less than
   * `minResyncIntervalMs` ago, or whose server backs off, is not asked for again. Resolves with
   * each user's trust afterwards, in order; rejects only for bad input (`invalid_argument`) or a
   * closed client.
   */
  requestResync(userIds: readonly string[]): Promise<DeviceListTrust[]>;
  /**
   * For a sender about to encrypt: resyncs those of `userIds` whose list is stale (or failed, or
   * refreshing), waits for them at most `timeoutMs` on the clock, and returns every user's trust.
   * Waits for one resync share one budget, counted from the first: a later call waits only what is
   * left of `timeoutMs` since then, and none once it is spent. Never rejects for a slow or failing
   * server; only for bad input or a closed client.
   */
  ensureFresh(userIds: readonly string[], options: EnsureFreshOptions): Promise<DeviceListTrust[]>;
}

/** The machine calls this module makes (`OlmMachine` fits). */
export type DeviceListsMachine = EvidenceMachine &
  Pick<OlmMachine, "updateTrackedUsers" | "receiveSyncChangesMsc4186">;

export interface DeviceListsParts {
  machine: DeviceListsMachine;
  /**
   * The outgoing-request loop: the only path of key queries (`refreshDeviceLists`). Its events
   * and `running` tell which answers came from queries sent after a given moment (`query-order.ts`).
   */
  keyQueries: KeyQueryLoop & { readonly running: boolean };
  http: Msc2638Parts["http"];
  userId: string;
  deviceId: string;
  settings: DeviceListsSettings;
  clock: Clock;
  logger: Logger;
  /** The owner's lifetime: every wait ends once it fires. */
  signal: AbortSignal;
  assertOpen: () => void;
  emit: (event: string, payload: unknown) => void;
}

/** How one user came out of a re-query; `seq` numbers the answer it rests on, if there was one. */
type RequeryOutcome =
  | { ok: true; seq: number | undefined }
  | { ok: false; server: string; error: ErrorInfo; remote: boolean; retryAfterMs?: number | undefined };

/** Evidence from a message, with the moment it was seen. */
interface SenderEvidence {
  sender: SenderObservation;
  mark: QueryMark;
}

/**
 * Evidence found while a resync of the user ran (`flight`), judged once it is over: it is taken as
 * handled only if the resync's answer came from a query sent after it.
 */
interface HeldEvidence {
  flight: Promise<void>;
  /** By evidence keys; at most `MAX_CLAIMS_PER_USER`. */
  senders: Map<string, SenderEvidence & { evidence: string[] }>;
  /** What the signing detector found in the latest answer read during the flight, numbered `seq`. */
  signing: { seq: number; evidence: string[] } | undefined;
}

/**
 * The state of every judged user and the machinery that resyncs them: detectors in, trust out.
 * The facade feeds it what the other modules saw (`keysQueried`, `deviceListsChanged`,
 * `positionLost`, decrypted senders); it never reaches into them.
 *
 * What it keeps per user is bounded by the users: a trust and an evidence memo per judged user,
 * both dropped when the user is in `device_lists.left` (no encrypted room shared any more); the
 * last key-query answer only of users whose answers a re-query or a lost position waits for,
 * dropped once that is over; rate windows and held evidence only while they last.
 */
export class DeviceLists implements DeviceListsApi {
  readonly #parts: DeviceListsParts;
  readonly #logger: Logger;
  readonly #events: TypedEmitter<DeviceListsEvents>;
  readonly #ownServer: string;
  readonly #trust = new Map<string, DeviceListTrust>();
  readonly #flights = new Coalescer<string>();
  readonly #rate: ResyncRateLimit;
  readonly #backoff: ServerBackoff;
  readonly #memo = new EvidenceMemo();
  readonly #msc2638: Msc2638Client;
  readonly #arrivals = new RefreshArrivals();
  readonly #requeries: RequeryBatcher<RequeryOutcome>;
  /**
   * The last answered key query of each user, while a re-query batch runs or a lost position waits
   * for answers: its number and, if failed, the server.
   */
  readonly #lastQuery = new Map<string, { seq: number; failedServer: string | undefined }>();
  /** Completions of the outgoing-request loop (`query-order.ts`). */
  #querySeq = 0;
  /** Failed `keys/query` requests. */
  #keyQueryFailures = 0;
  /** Re-query batches running. */
  #batches = 0;
  /** When the sync position was last lost, while users may still wait for the re-query it started. */
  #positionLost: QueryMark | undefined;
  /** Losses whose users are not judged yet. */
  #lossesPending = 0;
  /** Evidence found while the user's resync ran, to be judged once it is over. */
  readonly #held = new Map<string, HeldEvidence>();
  /** The answer each finished resync rests on, until its evidence is judged. */
  readonly #results = new Map<string, number | undefined>();
  readonly #offLoop: () => void;
  /** Users waiting for their rate window to end, to be resynced then if still stale. */
  readonly #deferred = new Set<string>();
  /** Servers whose retry is scheduled, with the time. */
  readonly #retries = new Map<string, number>();
  /** When the first `ensureFresh` began to wait for each resync in flight (`ensureFresh`). */
  readonly #waitsSince = new WeakMap<Promise<void>, number>();
  /** Detector reads of the machine, one after another. */
  #inspections: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(parts: DeviceListsParts) {
    this.#parts = parts;
    this.#logger = prefixedLogger(parts.logger, "[device lists]");
    this.#events = new TypedEmitter<DeviceListsEvents>(parts.logger);
    forwardPrefixed(this.#events, "deviceLists", parts.emit);
    this.#ownServer = serverNameOf(parts.userId) ?? "";
    this.#rate = new ResyncRateLimit(parts.settings.minResyncIntervalMs);
    this.#backoff = new ServerBackoff(parts.settings.serverBackoff);
    this.#msc2638 = new Msc2638Client({ http: parts.http, clock: parts.clock, signal: parts.signal });
    this.#requeries = new RequeryBatcher((users) => this.#requeryBatch(users));
    // Every completion of the loop is numbered; an answered keys/query is numbered by `keysQueried`.
    const offSent = parts.keyQueries.events.on("requestSent", ({ kind }) => {
      if (kind !== "KeysQuery") this.#querySeq++;
    });
    const offFailed = parts.keyQueries.events.on("requestFailed", ({ kind }) => {
      this.#querySeq++;
      if (kind === "KeysQuery") this.#keyQueryFailures++;
    });
    this.#offLoop = () => {
      offSent();
      offFailed();
    };
  }

  trust(userId: string): DeviceListTrust {
    this.#parts.assertOpen();
    checkUserId(userId);
    return this.#trustOf(userId);
  }

  trustAll(): DeviceListTrust[] {
    this.#parts.assertOpen();
    return [...this.#trust.values()].sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
  }

  report(userId: string, note?: string): DeviceListTrust {
    this.#parts.assertOpen();
    checkUserId(userId);
    if (note !== undefined && typeof note !== "string") throw invalid("note must be a string");
    this.#signal(new Map([[userId, [detectReport(note)]]]));
    return this.#trustOf(userId);
  }

  async requestResync(userIds: readonly string[]): Promise<DeviceListTrust[]> {
    this.#parts.assertOpen();
    const users = checkUserIds(userIds);
    await this.#resync(users);
    return users.map((u) => this.#trustOf(u));
  }

  async ensureFresh(userIds: readonly string[], options: EnsureFreshOptions): Promise<DeviceListTrust[]> {
    this.#parts.assertOpen();
    const users = checkUserIds(userIds);
    const timeoutMs = options?.timeoutMs;
    // Longer waits overflow the timer (Node fires them after 1 ms), so they are refused.
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_TIMEOUT_MS) {
      throw invalid(`timeoutMs must be an integer from 0 to ${MAX_TIMEOUT_MS}`);
    }
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
      throw invalid("signal must be an AbortSignal");
    }
    const due = users.filter((u) => needsResync(this.#trustOf(u)));
    if (due.length === 0) return users.map((u) => this.#trustOf(u));
    void this.#resync(due);
    // Every wait for one resync shares one budget, counted from the first: a resync that outlasts
    // a send's wait (a refresh the server never relays) holds up that send, not every later one.
    const now = this.#parts.clock.now();
    const waits: Promise<void>[] = [];
    for (const flight of new Set(due.map((u) => this.#flights.inFlight(u)))) {
      if (flight === undefined) continue;
      const since = this.#waitsSince.get(flight) ?? now;
      this.#waitsSince.set(flight, since);
      const left = since + timeoutMs - now;
      if (left > 0) waits.push(this.#atMost(flight, left, options.signal));
    }
    await Promise.all(waits);
    return users.map((u) => this.#trustOf(u));
  }

  // Inputs from the facade: what the other modules saw.

  /** A `keys/query` was answered (`crypto.keysQueried`): detectors (b) and (c), refresh arrivals. */
  keysQueried(users: readonly string[], failedServers: readonly string[]): void {
    if (this.#closed) return;
    const seq = ++this.#querySeq;
    const failures = detectQueryFailures(users, failedServers);
    if (this.#batches > 0 || this.#positionLost !== undefined) {
      for (const user of users) this.#lastQuery.set(user, { seq, failedServer: failures.get(user)?.server });
    }
    this.#arrivals.queried(users, seq, (u) => failures.get(u)?.server);
    const now = this.#parts.clock.now();
    for (const [user, reason] of failures) {
      // A resync in flight reads this answer itself.
      if (this.#flights.inFlight(user) === undefined) {
        this.#fail(user, reason.server, unreachable(reason.server), reason, now);
      }
    }
    const answered = users.filter((u) => !failures.has(u));
    // A lost position leaves only this client behind: the crypto layer's own re-query (the sync
    // loop marks every tracked user dirty) is all it takes — if it was sent after the loss.
    const lost = this.#positionLost;
    if (lost !== undefined && sentAfter(lost, seq)) {
      for (const user of answered) {
        const trust = this.#trust.get(user);
        if (
          trust?.state === "stale" &&
          trust.reasons.every((r) => r.kind === "position_lost") &&
          this.#flights.inFlight(user) === undefined
        ) {
          this.#apply(user, { type: "refreshed", cleared: "client_only", at: now });
        }
      }
    }
    if (answered.length > 0) this.#inspectSigning(answered, seq);
  }

  /**
   * Sync announced changed lists (`sync.deviceListsChanged`): what an accepted refresh waits for.
   * Users in `left` share no encrypted room with this client any more: what is kept about them is
   * dropped (see `#forget`).
   */
  deviceListsChanged(changed: readonly string[], left: readonly string[] = []): void {
    if (this.#closed) return;
    const suspect = this.#arrivals.changed(changed, this.#mark());
    if (suspect.length > 0) {
      // A query in flight now went out before the announcement: a pass that starts after it tells
      // which answer is the refreshed list (`RefreshArrivals.drained`).
      void this.#parts.keyQueries.run().then(() => {
        if (!this.#closed) this.#arrivals.drained(suspect, this.#keyQueryFailures);
      });
    }
    for (const user of left) this.#forget(user);
  }

  /** The sync position was lost (`sync.positionLost`): detector (d). */
  positionLost(): void {
    if (this.#closed) return;
    // The sync layer has marked every tracked user dirty and sends their re-query next.
    this.#positionLost = this.#mark();
    this.#lossesPending++;
    this.#queue(async () => {
      try {
        const tracked = await trackedUserIds(this.#parts.machine);
        const reasons = new Map([...detectPositionLost(tracked)].map(([u, r]) => [u, [r]]));
        this.#signal(reasons);
      } finally {
        this.#lossesPending--;
      }
    });
  }

  /** A room event was decrypted, or failed to (`client.rooms.decrypt`, `rooms.decrypted`): detector (a). */
  roomEventDecrypted(event: unknown, outcome: DecryptOutcome): void {
    if (this.#closed) return;
    const sender = senderOfRoomEvent(event, outcome);
    if (sender !== undefined) this.#inspectSenders([{ sender, mark: this.#mark() }]);
  }

  /** To-device events the crypto layer processed (`sync.toDevice`): detector (a). */
  toDeviceReceived(events: readonly ProcessedToDevice[]): void {
    if (this.#closed) return;
    const senders = sendersOfToDevice(events);
    const mark = this.#mark();
    if (senders.length > 0) this.#inspectSenders(senders.map((sender) => ({ sender, mark })));
  }

  /**
   * Ends every wait (the owner's signal has fired) and waits for the resyncs and machine reads in
   * flight; nothing touches the machine afterwards. Call before the machine is closed, after the
   * outgoing-request loop stopped (a resync in flight waits on that loop).
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#offLoop();
    await Promise.allSettled(this.#flights.all());
    await this.#inspections;
  }

  // The detectors' shells.

  #inspectSenders(items: readonly SenderEvidence[]): void {
    this.#queue(async () => {
      const found = new Map<string, DeviceListStaleReason[]>();
      let tracked: Set<string> | undefined;
      for (const { sender, mark } of items) {
        if (this.#closed) return;
        if (sender.userId === this.#parts.userId && sender.deviceId === this.#parts.deviceId) continue;
        const listed = await listedDevices(this.#parts.machine, sender.userId);
        if (listed.length === 0) {
          // A user the machine does not follow has no list to be stale: a stranger's message must
          // not make the SDK start tracking (and querying) them.
          tracked ??= new Set(await trackedUserIds(this.#parts.machine));
          if (!tracked.has(sender.userId)) continue;
        }
        const detection = detectUnknownSender(sender, listed, this.#memo.seen(sender.userId));
        if (detection.reasons.length === 0) continue;
        const flight = this.#flights.inFlight(sender.userId);
        if (flight === undefined) {
          // The resync this starts (now, or when the limits allow) comes after the evidence.
          this.#memo.record(sender.userId, detection.evidence);
        } else {
          const held = this.#heldFor(sender.userId, flight);
          const key = detection.evidence.join("\u0000");
          held.senders.delete(key);
          held.senders.set(key, { sender, mark, evidence: detection.evidence });
          if (held.senders.size > MAX_CLAIMS_PER_USER)
            held.senders.delete(held.senders.keys().next().value as string);
        }
        found.set(sender.userId, [...(found.get(sender.userId) ?? []), ...detection.reasons]);
      }
      this.#signal(found);
    });
  }

  /** The signing detector on the users of the answer numbered `seq`. */
  #inspectSigning(users: readonly string[], seq: number): void {
    this.#queue(async () => {
      const found = new Map<string, DeviceListStaleReason[]>();
      for (const user of users) {
        if (this.#closed) return;
        const snapshot = await signingSnapshot(this.#parts.machine, user, this.#parts);
        const detection = detectUnsignedDevices(snapshot, this.#memo.seen(user));
        const flight = this.#flights.inFlight(user);
        if (flight !== undefined) {
          // The latest answer read during the flight replaces what an earlier one showed.
          const signing = detection.reasons.length > 0 ? { seq, evidence: detection.evidence } : undefined;
          if (signing !== undefined) this.#heldFor(user, flight).signing = signing;
          else {
            const held = this.#held.get(user);
            if (held?.flight === flight) held.signing = undefined;
          }
        }
        if (detection.reasons.length === 0) continue;
        if (flight === undefined) this.#memo.record(user, detection.evidence);
        found.set(user, detection.reasons);
      }
      this.#signal(found);
    });
  }

  #heldFor(user: string, flight: Promise<void>): HeldEvidence {
    let held = this.#held.get(user);
    if (held?.flight !== flight) {
      held = { flight, senders: new Map(), signing: undefined };
      this.#held.set(user, held);
    }
    return held;
  }

  /**
   * A resync of `user` is over (`flight`). Evidence found meanwhile was recorded as handled only if
   * the answer the resync rests on came from a query sent after it; anything else — the answer came
   * first, or there was none — is judged again on the list as it is now, and triggers again if the
   * list still lacks what the evidence names.
   */
  #afterFlight(user: string, flight: Promise<void>): void {
    const result = this.#results.get(user);
    this.#results.delete(user);
    const held = this.#held.get(user);
    if (held === undefined || held.flight !== flight) return;
    this.#held.delete(user);
    if (this.#closed) return;
    const again: SenderEvidence[] = [];
    for (const item of held.senders.values()) {
      if (result !== undefined && sentAfter(item.mark, result)) this.#memo.record(user, item.evidence);
      else again.push(item);
    }
    if (again.length > 0) this.#inspectSenders(again);
    const signing = held.signing;
    if (signing !== undefined) {
      if (result !== undefined && result >= signing.seq) this.#memo.record(user, signing.evidence);
      else this.#inspectSigning([user], signing.seq);
    }
  }

  /** Runs a machine read after the earlier ones; never rejects, skipped once closed. */
  #queue(work: () => Promise<void>): void {
    this.#inspections = this.#inspections.then(async () => {
      if (this.#closed) return;
      try {
        await work();
      } catch (error) {
        this.#logger.warn("reading the device lists failed", errorSummary(error));
      }
    });
  }

  /** Records evidence and resyncs the users it names — each signal on its own. */
  #signal(found: ReadonlyMap<string, readonly DeviceListStaleReason[]>): void {
    if (found.size === 0 || this.#closed) return;
    for (const [user, reasons] of found) this.#apply(user, { type: "evidence", reasons });
    void this.#resync([...found.keys()]);
  }

  // Resyncs.

  /**
   * Resyncs `users` as far as the limits allow; resolves when every resync it started or joined
   * is over. Never rejects.
   */
  #resync(users: readonly string[]): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const now = this.#parts.clock.now();
    const waits: Promise<void>[] = [];
    const starting: string[] = [];
    for (const user of new Set(users)) {
      const running = this.#flights.inFlight(user);
      if (running !== undefined) {
        waits.push(running);
        continue;
      }
      const limitedUntil = this.#rate.blockedUntil(user, now);
      if (limitedUntil !== undefined) {
        this.#deferTo(user, limitedUntil, now);
        continue;
      }
      const blocked = this.#blockedServer(user, now);
      if (blocked !== undefined) {
        this.#apply(user, failedInput(blocked));
        this.#scheduleRetry(blocked, now);
        continue;
      }
      starting.push(user);
    }
    if (starting.length > 0) waits.push(...this.#start(starting, now));
    return Promise.all(waits).then(() => undefined);
  }

  /** Starts one resync for `users` together; returns each user's flight. */
  #start(users: readonly string[], now: number): Promise<void>[] {
    const done = new Map<string, () => void>();
    const flights: Promise<void>[] = [];
    for (const user of users) {
      this.#rate.record(user, now);
      const { flight } = this.#flights.run(
        user,
        () =>
          new Promise<void>((resolve) => {
            done.set(user, resolve);
          }),
      );
      // Runs once the flight is forgotten, so a resync the held evidence asks for starts afresh.
      // The rate window restarts at the end: measured from the start, a resync slower than the
      // window would leave the next ask free to go out at once.
      void flight.then(() => {
        this.#rate.record(user, this.#parts.clock.now());
        this.#afterFlight(user, flight);
      });
      flights.push(flight);
    }
    void this.#runGroup(users, done);
    return flights;
  }

  async #runGroup(users: readonly string[], done: Map<string, () => void>): Promise<void> {
    const finish = (user: string, result?: number) => {
      const resolve = done.get(user);
      if (resolve === undefined) return;
      done.delete(user);
      this.#results.set(user, result);
      resolve();
    };
    try {
      // The homeserver's own users' lists are authoritative there: only remote users' can be stale
      // on the server. An ask with no evidence (`requestResync` on a fresh user) counts as wanting one.
      const wantsServer = (u: string) => {
        const reasons = reasonsOf(this.#trustOf(u));
        return serverNameOf(u) !== this.#ownServer && (reasons.length === 0 || wantsServerRefresh(reasons));
      };
      const candidates = this.#parts.settings.msc2638 ? users.filter(wantsServer) : [];
      const supported = candidates.length > 0 && (await this.#msc2638.supported());
      const viaServer = new Set(supported ? candidates : []);
      const requery = users.filter((u) => !viaServer.has(u));
      const work: Promise<void>[] = [];
      if (requery.length > 0) work.push(this.#requeryThen(requery, finish));
      if (viaServer.size > 0) work.push(this.#viaMsc2638([...viaServer], finish));
      await Promise.all(work);
    } catch (error) {
      this.#logger.warn("a device-list resync failed", errorSummary(error));
    } finally {
      for (const user of [...done.keys()]) finish(user);
    }
  }

  /** Re-queries `users` together, then ends each one's resync. */
  async #requeryThen(
    users: readonly string[],
    finish: (user: string, result?: number) => void,
  ): Promise<void> {
    const results = await this.#requery(users);
    for (const user of users) finish(user, results.get(user));
  }

  /**
   * Asks the homeserver to refresh each of `users` (MSC2638) and waits for their lists to arrive;
   * re-queries those it did not take, and those whose list did not arrive in time. Each user's
   * resync ends (`finish`, with the number of the answer it rests on) as soon as their list is in.
   *
   * The group shares one deadline, `refreshArrivalTimeoutMs` after the last refresh was answered,
   * and one re-query of the users it did not reach: so a thousand refreshes answered over a second
   * cost ⌈n/250⌉ key queries at the end, not one each.
   */
  async #viaMsc2638(
    users: readonly string[],
    finish: (user: string, result?: number) => void,
  ): Promise<void> {
    for (const user of users) this.#apply(user, { type: "started", via: "msc2638" });
    const accepted: { user: string; arrival: Promise<Arrival>; cancel: () => void }[] = [];
    const refused: string[] = [];
    await Promise.all(
      users.map(async (user) => {
        let answer: RefreshAnswer = await this.#msc2638.refresh(user);
        // The client holds every refresh until a 429's wait is over; then this one is asked once more.
        if (answer.kind === "rate_limited" && !this.#closed) answer = await this.#msc2638.refresh(user);
        if (this.#closed) return;
        if (answer.kind === "accepted") {
          // Only what sync and the key queries tell after the 202 is this refresh's.
          accepted.push({ user, ...this.#arrivals.expect(user, this.#mark()) });
          return;
        }
        if (answer.kind !== "unsupported") {
          this.#logger.info("the homeserver did not take a device-list refresh; re-querying", {
            kind: answer.kind,
          });
        }
        refused.push(user);
      }),
    );
    if (this.#closed) return;
    const work: Promise<void>[] = [];
    if (refused.length > 0) work.push(this.#requeryThen(refused, finish));
    if (accepted.length > 0) {
      // Accepted but not relayed in time (the sync may not run, the server's fetch is slow, or it
      // announces only lists that changed): what a re-query gives is still better than nothing.
      const deadline = this.#sleep(this.#parts.settings.refreshArrivalTimeoutMs).then(() => undefined);
      const late: string[] = [];
      await Promise.all(
        accepted.map(async ({ user, arrival, cancel }) => {
          const outcome = await Promise.race([arrival, deadline]);
          cancel();
          if (this.#closed) return;
          if (outcome === undefined) late.push(user);
          else finish(user, await this.#arrived(user, outcome));
        }),
      );
      if (late.length > 0 && !this.#closed) work.push(this.#requeryThen(late, finish));
    }
    await Promise.all(work);
  }

  /** Records how an accepted refresh of `user` ended; the number of the answer it rests on, if any. */
  async #arrived(user: string, outcome: Arrival): Promise<number | undefined> {
    // The answer that completed the arrival is read by the signing detector first.
    await this.#inspections;
    if (this.#closed) return undefined;
    const now = this.#parts.clock.now();
    if (outcome.kind === "arrived") {
      const server = serverNameOf(user);
      if (server !== undefined) this.#backoff.success(server);
      this.#apply(user, { type: "refreshed", cleared: "server_and_client", at: now });
      return outcome.seq;
    }
    this.#fail(user, outcome.server, unreachable(outcome.server), keyQueryFailed(outcome.server), now);
    return undefined;
  }

  /**
   * Re-queries `users` (batched with other re-queries) and records how each came out. Resolves
   * with the number of the answer each user's outcome rests on, if any.
   */
  async #requery(users: readonly string[]): Promise<Map<string, number | undefined>> {
    const results = new Map<string, number | undefined>();
    for (const user of users) this.#apply(user, { type: "started", via: "requery" });
    const outcomes = await this.#requeries.requery(users);
    // Once the owner closes, a query cut short says nothing about any server: the trust stays.
    if (this.#ending) return results;
    const now = this.#parts.clock.now();
    for (const user of users) {
      const outcome: RequeryOutcome = outcomes.get(user) ?? { ok: true, seq: undefined };
      if (outcome.ok) {
        const server = serverNameOf(user);
        if (server !== undefined) this.#backoff.success(server);
        this.#backoff.success(this.#ownServer);
        this.#apply(user, { type: "refreshed", cleared: "client_only", at: now });
        results.set(user, outcome.seq);
      } else {
        const reason = outcome.remote ? keyQueryFailed(outcome.server) : undefined;
        this.#fail(user, outcome.server, outcome.error, reason, now, outcome.retryAfterMs);
      }
    }
    return results;
  }

  /**
   * One re-query batch through the crypto layer; the `keysQueried` answers say who failed. Users
   * stale only for a lost position are already queued for a query by the sync layer (it marks every
   * tracked user dirty, `SyncProcessor.positionLost`): marking them again would query each twice,
   * so their batch only sends what is due and reads the answers to queries sent since the loss.
   * An answer counts for a user only if it came from a query sent after the batch began (or the
   * loss), as `settledAfter` judges once the batch's own pass is over.
   */
  async #requeryBatch(users: string[]): Promise<Map<string, RequeryOutcome>> {
    this.#batches++;
    try {
      return await this.#requeryBatchRun(users);
    } finally {
      this.#batches--;
      this.#pruneQueries();
    }
  }

  async #requeryBatchRun(users: string[]): Promise<Map<string, RequeryOutcome>> {
    const since = this.#mark();
    const lost = this.#positionLost;
    const queued = new Set(lost === undefined ? [] : users.filter((u) => this.#onlyPositionLost(u)));
    const answer = (user: string) => {
      const mark = lost !== undefined && queued.has(user) ? lost : since;
      const last = this.#lastQuery.get(user);
      if (last === undefined || last.seq <= mark.seq) return undefined;
      // A failure is never mistaken for a fresh list, whichever query it answered.
      if (last.failedServer !== undefined) return last;
      return settledAfter(mark, last.seq, this.#keyQueryFailures) ? last : undefined;
    };
    let thrown: unknown;
    const ask = async (batch: string[]) => {
      try {
        await refreshDeviceLists(this.#parts.machine, this.#parts.keyQueries, batch, this.#parts.signal);
      } catch (error) {
        thrown ??= error;
      }
    };
    const marked = users.filter((u) => !queued.has(u));
    if (marked.length > 0) await ask(marked);
    else if (!this.#parts.keyQueries.stopped) await this.#parts.keyQueries.run();
    // Queued users the sync layer's query did not reach (it failed, or came before): asked after all.
    const missed = [...queued].filter((u) => answer(u) === undefined);
    if (missed.length > 0 && !this.#closed) await ask(missed);
    // The signing detector reads each answer before the batch counts as done.
    await this.#inspections;
    const out = new Map<string, RequeryOutcome>();
    for (const user of users) {
      const last = answer(user);
      if (last !== undefined) {
        out.set(
          user,
          last.failedServer === undefined
            ? { ok: true, seq: last.seq }
            : { ok: false, server: last.failedServer, error: unreachable(last.failedServer), remote: true },
        );
        continue;
      }
      // Not in any answer: crypto-wasm leaves out the users of a server that failed before,
      // until its own backoff expires (see `ServerBackoff`), so that server still counts as down.
      const server = serverNameOf(user);
      const earlier = server === undefined ? undefined : this.#backoff.lastFailure(server);
      if (server !== undefined && earlier !== undefined && server !== this.#ownServer) {
        out.set(user, { ok: false, server, error: earlier.error, remote: true });
      } else if (thrown !== undefined) {
        // This client's own homeserver failed the query (or the loop stopped).
        out.set(user, {
          ok: false,
          server: this.#ownServer,
          error: toErrorInfo(thrown),
          remote: false,
          retryAfterMs: retryAfterOf(thrown),
        });
      } else {
        out.set(user, { ok: true, seq: undefined });
      }
    }
    return out;
  }

  /**
   * Drops the key-query answers nobody waits for any more: every one once no batch runs, but those
   * since a lost position while some user still waits for its re-query.
   */
  #pruneQueries(): void {
    if (this.#batches > 0) return;
    if (
      this.#positionLost !== undefined &&
      this.#lossesPending === 0 &&
      ![...this.#trust.keys()].some((u) => this.#onlyPositionLost(u))
    ) {
      this.#positionLost = undefined;
    }
    const lost = this.#positionLost;
    if (lost === undefined) {
      this.#lastQuery.clear();
      return;
    }
    for (const [user, last] of this.#lastQuery) if (last.seq <= lost.seq) this.#lastQuery.delete(user);
  }

  #onlyPositionLost(user: string): boolean {
    const reasons = reasonsOf(this.#trustOf(user));
    return reasons.length > 0 && reasons.every((r) => r.kind === "position_lost");
  }

  // Limits.

  /** A failing server `user` depends on: their own, or this client's homeserver. */
  #blockedServer(user: string, now: number): ServerFailure | undefined {
    const own = this.#backoff.blocked(this.#ownServer, now);
    if (own !== undefined) return own;
    const server = serverNameOf(user);
    return server === undefined ? undefined : this.#backoff.blocked(server, now);
  }

  #fail(
    user: string,
    server: string,
    error: ErrorInfo,
    reason: DeviceListStaleReason | undefined,
    now: number,
    retryAfterMs?: number,
  ): void {
    // Our own close is no server's failure, and its retry would never come.
    if (this.#ending) return;
    const failure = this.#backoff.failure(server, now, error, retryAfterMs);
    this.#apply(user, failedInput(failure, reason));
    this.#scheduleRetry(failure, now);
  }

  /** Once a server may be asked again, its failed users are resynced (and back off further if it still fails). */
  #scheduleRetry(failure: ServerFailure, now: number): void {
    const scheduled = this.#retries.get(failure.server);
    if (scheduled !== undefined && scheduled <= failure.nextRetryAt) return;
    this.#retries.set(failure.server, failure.nextRetryAt);
    void this.#sleep(failure.nextRetryAt - now).then((woke) => {
      if (this.#retries.get(failure.server) === failure.nextRetryAt) this.#retries.delete(failure.server);
      if (!woke || this.#closed) return;
      const users = [...this.#trust.values()]
        .filter((t) => t.state === "failed" && t.server === failure.server)
        .map((t) => t.userId);
      if (users.length > 0) void this.#resync(users);
    });
  }

  /**
   * A user found stale (or due a retry) inside their rate window is resynced when it ends, so no
   * signal is lost to the limit.
   */
  #deferTo(user: string, at: number, now: number): void {
    const due = () => ["stale", "failed"].includes(this.#trustOf(user).state);
    if (!due() || this.#deferred.has(user)) return;
    this.#deferred.add(user);
    void this.#sleep(at - now).then((woke) => {
      this.#deferred.delete(user);
      if (woke && !this.#closed && due()) void this.#resync([user]);
    });
  }

  /**
   * Forgets `user`, who shares no encrypted room with this client any more: their trust is
   * `unknown` again and their evidence memo goes. A user whose resync runs is forgotten once it
   * is over, so it does not record them again.
   */
  #forget(user: string): void {
    const flight = this.#flights.inFlight(user);
    if (flight !== undefined) {
      void flight.then(() => {
        if (!this.#closed && this.#flights.inFlight(user) === undefined) this.#forget(user);
      });
      return;
    }
    this.#memo.forget(user);
    this.#lastQuery.delete(user);
    this.#held.delete(user);
    if (this.#trust.delete(user) && !this.#closed) {
      this.#events.emit("trustChanged", { userId: user, trust: { state: "unknown", userId: user } });
    }
  }

  // Helpers.

  /** Where the outgoing-request loop stands now (`query-order.ts`). */
  #mark(): QueryMark {
    return {
      seq: this.#querySeq,
      inFlight: this.#parts.keyQueries.running,
      failures: this.#keyQueryFailures,
    };
  }

  /** The owner closed, or is closing (its signal fires before `close()` is called). */
  get #ending(): boolean {
    return this.#closed || this.#parts.signal.aborted;
  }

  #trustOf(userId: string): DeviceListTrust {
    return this.#trust.get(userId) ?? { state: "unknown", userId };
  }

  #apply(userId: string, input: TrustInput): void {
    const current = this.#trustOf(userId);
    const next = reduceTrust(current, input);
    if (sameTrust(current, next) || this.#ending) return;
    this.#trust.set(userId, next);
    this.#events.emit("trustChanged", { userId, trust: next });
  }

  /** Sleeps on the clock; `false` when the owner closed first. */
  async #sleep(ms: number): Promise<boolean> {
    try {
      await this.#parts.clock.sleep(ms, this.#parts.signal);
      return true;
    } catch {
      return false;
    }
  }

  /** `work`, or whatever is done after `timeoutMs` on the clock (or the caller's abort). */
  async #atMost(work: Promise<void>, timeoutMs: number, caller: AbortSignal | undefined): Promise<void> {
    const timer = new AbortController();
    const signal = caller
      ? AbortSignal.any([timer.signal, caller, this.#parts.signal])
      : AbortSignal.any([timer.signal, this.#parts.signal]);
    try {
      await Promise.race([work, this.#parts.clock.sleep(timeoutMs, signal).catch(() => undefined)]);
    } finally {
      timer.abort();
    }
  }
}

function failedInput(failure: ServerFailure, reason?: DeviceListStaleReason): TrustInput {
  return {
    type: "failed",
    server: failure.server,
    nextRetryAt: failure.nextRetryAt,
    error: failure.error,
    ...(reason === undefined ? {} : { reason }),
  };
}

/** How long the server asked to wait (429 `retry_after_ms`), read through the error's causes. */
function retryAfterOf(error: unknown): number | undefined {
  let current = error;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    if (isMatrixApiError(current) && current.retryAfterMs !== undefined) return current.retryAfterMs;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function keyQueryFailed(server: string): DeviceListStaleReason {
  return { kind: "key_query_failed", server };
}

function unreachable(server: string): ErrorInfo {
  return toErrorInfo(
    new SdkError<DeviceListErrorCode>(
      "server_unreachable",
      "the homeserver could not reach the user's server",
      {
        details: { server },
      },
    ),
  );
}

function invalid(message: string): SdkError<DeviceListErrorCode> {
  return new SdkError<DeviceListErrorCode>("invalid_argument", message);
}

function checkUserId(userId: unknown): asserts userId is string {
  if (!isValidUserId(userId)) throw invalid("userId must be a user id (@user:server)");
}

function checkUserIds(userIds: unknown): string[] {
  if (!Array.isArray(userIds)) throw invalid("userIds must be an array of user ids");
  for (const userId of userIds) checkUserId(userId);
  return userIds as string[];
}
