import { afterEach, expect } from "vitest";
import { createE2eeClient, type E2eeClient } from "../../../src/client.js";
import type { CreateE2eeClientOptions, E2eeClientEvents } from "../../../src/client-options.js";
import type { FetchLike } from "../../../src/http/matrix-http.js";
import type { ReceivedToDeviceEvent } from "../../../src/sync/crypto-sync.js";
import { CLASSIC_SYNC_PATH, ENCRYPTION_CONN_ID, SLIDING_SYNC_PATH } from "../../../src/sync/sync-loops.js";
import {
  createMockHomeserver,
  ManualClock,
  type MockHomeserver,
  type ProfileName,
  profiles,
  type RequestLogEntry,
  type RunningMockServer,
  startMockServer,
} from "../../../src/testing/index.js";
import { inClient, inThreadOnlyOptions, type TestClient } from "./client-mode.js";
import { type Account, endTest, LeakWatch, openTestClient } from "./foundation-fixtures.js";

/**
 * Shared setup of the encryption-loop tests: which profiles to run on, what the mock logged of
 * the loop's requests, the bodies the client was answered with, the `sync.*` events an app hears,
 * to-device traffic from a second user (plain for bulk, Olm-encrypted through a real machine),
 * and a model of crypto-wasm's key-upload rules to compare the server's `keys/upload` log with.
 */

/** Every mock profile: new ones are covered without touching the tests. */
export const allProfiles = Object.keys(profiles) as ProfileName[];

/** The profiles whose server serves simplified sliding sync (MSC4186). */
export const slidingProfiles = allProfiles.filter(
  (name) => profiles[name].unstableFeatures["org.matrix.simplified_msc3575"] === true,
);

export const KEYS_UPLOAD_PATH = "/_matrix/client/v3/keys/upload";
export const KEYS_QUERY_PATH = "/_matrix/client/v3/keys/query";

/** The to-device type of the numbered test messages; `content.seq` is the message's id. */
export const SEQ_TYPE = "org.example.seq";

/**
 * Polls `check` until it holds. The loop under test runs on its own, so there is not always an
 * event to await; this only waits for a state, it proves nothing by elapsed time.
 */
export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The encryption loop's sliding-sync requests the mock saw, scripted answers included. */
export function slidingRequests(hs: Pick<MockHomeserver, "control">): RequestLogEntry[] {
  return hs.control
    .requestLog()
    .filter((e) => e.path === SLIDING_SYNC_PATH && bodyOf(e)?.conn_id === ENCRYPTION_CONN_ID);
}

/** The classic `/sync` requests the mock saw. */
export function classicRequests(hs: Pick<MockHomeserver, "control">): RequestLogEntry[] {
  return hs.control.requestLog().filter((e) => e.path === CLASSIC_SYNC_PATH);
}

/** `keys/upload` requests of `userId`. */
export function keysUploads(hs: Pick<MockHomeserver, "control">, userId: string): RequestLogEntry[] {
  return hs.control
    .requestLog()
    .filter((e) => e.path === KEYS_UPLOAD_PATH && e.userId === userId && !isCountQuery(e));
}

/** `keys/upload` with nothing in it: the SDK asking for its counts (see `src/sync/count-refresh.ts`). */
export function countQueries(hs: Pick<MockHomeserver, "control">, userId: string): RequestLogEntry[] {
  return hs.control
    .requestLog()
    .filter((e) => e.path === KEYS_UPLOAD_PATH && e.userId === userId && isCountQuery(e));
}

function isCountQuery(entry: RequestLogEntry): boolean {
  const body = (entry.body ?? {}) as Record<string, unknown>;
  return Object.keys(body).length === 0;
}

function bodyOf(entry: RequestLogEntry): Record<string, unknown> | undefined {
  const body = entry.body;
  return typeof body === "object" && body !== null ? (body as Record<string, unknown>) : undefined;
}

/** The `pos` query parameter of a sliding-sync request. */
export function posOf(entry: RequestLogEntry): string | undefined {
  return new URLSearchParams(entry.query).get("pos") ?? undefined;
}

/** The `to_device.since` of a sliding-sync request. */
export function sinceOf(entry: RequestLogEntry): string | undefined {
  const body = entry.body as { extensions?: { to_device?: { since?: string } } } | undefined;
  return body?.extensions?.to_device?.since;
}

/**
 * Every request of the encryption connection asks for both extensions in full (Synapse's are not
 * sticky: `handlers/sliding_sync/extensions.py` serves only what the request names) and never for
 * `to_device.limit` 0 or less: on Synapse `limit: 0` answers the stream's head as `next_batch`, so
 * the next `since` deletes every message never delivered (`deviceinbox.py`
 * `get_messages_for_device`).
 */
export function expectEncryptionRequests(entries: readonly RequestLogEntry[]): void {
  expect(entries.length).toBeGreaterThan(0);
  for (const entry of entries) {
    expect(entry.body).toMatchObject({
      conn_id: ENCRYPTION_CONN_ID,
      extensions: { e2ee: { enabled: true }, to_device: { enabled: true } },
    });
    const limit = (entry.body as { extensions: { to_device: { limit?: unknown } } }).extensions.to_device
      .limit;
    expect(Number.isInteger(limit) && (limit as number) >= 1, `to_device.limit ${String(limit)}`).toBe(true);
  }
}

/** Whether the request ended strictly before `next` started (no two in flight at once). */
export function endedBefore(entry: RequestLogEntry, next: RequestLogEntry): boolean {
  return entry.endOrder !== null && entry.endOrder < next.startOrder;
}

/** A 2xx sync body the client was answered with, in the order it was answered. */
export interface RecordedSync {
  mode: "sliding" | "classic";
  body: Record<string, unknown>;
}

/**
 * A `fetch` that keeps a copy of every 2xx sync body (scripted or real) before handing the response
 * on: the client reads what the server sent, the test reads the same.
 */
export function recordingFetch(into: RecordedSync[], inner: FetchLike = (r, i) => globalThis.fetch(r, i)) {
  const fetch: FetchLike = async (input, init) => {
    const response = await inner(input, init);
    const path = new URL(input.url).pathname;
    const mode = path === SLIDING_SYNC_PATH ? "sliding" : path === CLASSIC_SYNC_PATH ? "classic" : undefined;
    if (mode !== undefined && response.ok) {
      into.push({ mode, body: (await response.clone().json()) as Record<string, unknown> });
    }
    return response;
  };
  return fetch;
}

type SyncEventName = Extract<keyof E2eeClientEvents, `sync.${string}`>;
export type SyncEvent = { [K in SyncEventName]: { name: K; payload: E2eeClientEvents[K] } }[SyncEventName];

/** Every `sync.*` event of a client, in order, through the event stream's `onAny`. */
export class SyncRecorder {
  readonly events: SyncEvent[] = [];

  constructor(client: TestClient) {
    client.events.onAny((name, payload) => {
      if (name.startsWith("sync.")) this.events.push({ name, payload } as SyncEvent);
    });
  }

  of<K extends SyncEventName>(name: K): E2eeClientEvents[K][] {
    return this.events.filter((e) => e.name === name).map((e) => e.payload as E2eeClientEvents[K]);
  }

  /** The to-device events the app was handed, in order. */
  get toDevice(): ReceivedToDeviceEvent[] {
    return this.of("sync.toDevice").flatMap((p) => [...p.events]);
  }

  /** `content.seq` of every numbered message the app could read (decrypted or in clear), in order. */
  get seqs(): number[] {
    return this.toDevice.flatMap((e) => {
      const seq = seqOf(e);
      return seq === undefined ? [] : [seq];
    });
  }
}

/** The id a numbered message carries, if the app can read it. */
export function seqOf(event: ReceivedToDeviceEvent): number | undefined {
  if (event.kind !== "plaintext" && event.kind !== "decrypted") return undefined;
  if (event.event.type !== SEQ_TYPE) return undefined;
  const seq = (event.event.content as { seq?: unknown } | undefined)?.seq;
  return typeof seq === "number" ? seq : undefined;
}

export interface DeviceSession {
  userId: string;
  deviceId: string;
  accessToken: string;
}

/** A Client-Server call made by the test itself, as another app would make it. */
export async function matrixCall(
  baseUrl: string,
  session: Pick<DeviceSession, "accessToken">,
  method: string,
  path: string,
  body?: unknown,
  fetchImpl: (input: string, init: RequestInit) => Promise<Response> = (i, r) => globalThis.fetch(i, r),
): Promise<Record<string, unknown>> {
  const response = await fetchImpl(`${baseUrl}${path}`, {
    method,
    headers: { Authorization: `Bearer ${session.accessToken}`, "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await response.json()) as Record<string, unknown>;
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

let txn = 0;

/**
 * `sender` sends numbered plain to-device messages to `recipient`'s device, one `sendToDevice`
 * each (the API carries one message per device per request), `parallel` at a time.
 */
export async function sendPlainToDevice(
  baseUrl: string,
  sender: Pick<DeviceSession, "accessToken">,
  recipient: Pick<DeviceSession, "userId" | "deviceId">,
  seqs: readonly number[],
  options: { parallel?: number; fetch?: (input: string, init: RequestInit) => Promise<Response> } = {},
): Promise<void> {
  const parallel = options.parallel ?? 8;
  for (let i = 0; i < seqs.length; i += parallel) {
    await Promise.all(
      seqs
        .slice(i, i + parallel)
        .map((seq) =>
          matrixCall(
            baseUrl,
            sender,
            "PUT",
            `/_matrix/client/v3/sendToDevice/${SEQ_TYPE}/plain-${++txn}`,
            { messages: { [recipient.userId]: { [recipient.deviceId]: { seq } } } },
            options.fetch,
          ),
        ),
    );
  }
}

/**
 * Readies `sender` (a client with its own machine) to Olm-encrypt numbered messages for
 * `recipient`'s device: queries the recipient's keys and claims a one-time key. Returns the send.
 */
export async function olmSender(
  baseUrl: string,
  sender: TestClient,
  senderSession: Pick<DeviceSession, "accessToken">,
  recipient: Pick<DeviceSession, "userId" | "deviceId">,
): Promise<(seq: number) => Promise<void>> {
  await inClient(sender, "prepareOlmSession", recipient.userId, recipient.deviceId);
  return async (seq) => {
    const content = await inClient(
      sender,
      "encryptToDevice",
      recipient.userId,
      recipient.deviceId,
      SEQ_TYPE,
      {
        seq,
      },
    );
    await matrixCall(
      baseUrl,
      senderSession,
      "PUT",
      `/_matrix/client/v3/sendToDevice/m.room.encrypted/olm-${++txn}`,
      {
        messages: { [recipient.userId]: { [recipient.deviceId]: content } },
      },
    );
  };
}

/** `owner` creates a private room and invites `guest`, who joins: each then sees the other's keys change. */
export async function shareRoom(
  baseUrl: string,
  owner: DeviceSession,
  guest: DeviceSession,
): Promise<string> {
  const created = await matrixCall(baseUrl, owner, "POST", "/_matrix/client/v3/createRoom", {
    preset: "private_chat",
    invite: [guest.userId],
  });
  const roomId = String(created.room_id);
  await matrixCall(baseUrl, guest, "POST", `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {});
  return roomId;
}

/** The devices `observer`'s machine knows for `userId`. */
export function knownDevices(observer: TestClient, userId: string): Promise<string[]> {
  return inClient(observer, "knownDevices", userId);
}

/** What one upload carries: how many one-time keys, how many fallback keys. */
export interface UploadShape {
  oneTimeKeys: number;
  fallbackKeys: number;
}

/** The keys of a `keys/upload` request as the mock logged it. */
export function uploadShape(entry: RequestLogEntry): UploadShape {
  const body = entry.body as { one_time_keys?: object; fallback_keys?: object } | undefined;
  return {
    oneTimeKeys: Object.keys(body?.one_time_keys ?? {}).length,
    fallbackKeys: Object.keys(body?.fallback_keys ?? {}).length,
  };
}

/**
 * crypto-wasm 18.9.0's key-upload rules (rust-sdk `olm/account.rs` `update_key_counts`), behind
 * the SDK's reading of the wire:
 * - one-time keys: whenever a response's `signed_curve25519` count reaches the machine and is below
 *   50, it tops up to 50 (`generate_one_time_keys_if_needed`) and uploads; on sliding sync an
 *   omitted count field is "unchanged" (no upload), on classic `/sync` it is zero (an upload); a
 *   map that does not list `signed_curve25519` says zero on both (Client-Server spec, sync
 *   `device_one_time_keys_count`; MSC3884 keeps that meaning for a present field);
 * - fallback key: made (and uploaded) the first time any unused-fallback-types Set reaches the
 *   machine, whatever it holds; afterwards only once the key is a week old
 *   (`generate_fallback_key_if_needed`) — never within one test, since that age is on the
 *   library's own clock;
 * - both in one response make one upload, of `50 - count` one-time keys and the fallback key; the
 *   loop sends it before the next request.
 *
 * `null` is read as absent, as the SDK's schema reads it (servers with optional types send it).
 */
export function modelKeyUploads(
  responses: readonly RecordedSync[],
  options: { hasFallbackKey?: boolean } = {},
): {
  uploads: number;
  oneTimeKeyUploads: number;
  fallbackKeyUploads: number;
  /** Per response, the upload it makes (`undefined`: none). */
  steps: (UploadShape | undefined)[];
} {
  let hasFallbackKey = options.hasFallbackKey ?? false;
  let oneTimeKeyUploads = 0;
  let fallbackKeyUploads = 0;
  const steps: (UploadShape | undefined)[] = [];
  for (const { mode, body } of responses) {
    const e2ee = (
      mode === "sliding" ? (body.extensions as Record<string, unknown> | null | undefined)?.e2ee : body
    ) as
      | {
          device_one_time_keys_count?: Record<string, number> | null;
          device_unused_fallback_key_types?: unknown;
        }
      | null
      | undefined;
    const map = e2ee?.device_one_time_keys_count ?? undefined;
    const count = map === undefined ? (mode === "classic" ? 0 : undefined) : (map.signed_curve25519 ?? 0);
    const topUp = count !== undefined && count < 50;
    const setGiven = Array.isArray(e2ee?.device_unused_fallback_key_types);
    const newFallback = setGiven && !hasFallbackKey;
    if (setGiven) hasFallbackKey = true;
    if (topUp) oneTimeKeyUploads++;
    if (newFallback) fallbackKeyUploads++;
    steps.push(
      topUp || newFallback
        ? { oneTimeKeys: topUp ? 50 - count : 0, fallbackKeys: newFallback ? 1 : 0 }
        : undefined,
    );
  }
  return { uploads: steps.filter(Boolean).length, oneTimeKeyUploads, fallbackKeyUploads, steps };
}

/**
 * The uploads each 2xx sync response led to, as the mock logged them: those sent between the
 * response and the next sync request (the loop sends the machine's requests in that gap).
 */
export function uploadsPerResponse(
  syncs: readonly RequestLogEntry[],
  uploads: readonly RequestLogEntry[],
): (UploadShape | undefined)[] {
  return syncs.flatMap((sync, i) => {
    if (sync.status === null || sync.status < 200 || sync.status > 299) return [];
    const next = syncs[i + 1];
    const made = uploads.filter(
      (u) =>
        sync.endOrder !== null &&
        u.startOrder > sync.endOrder &&
        (next === undefined || u.startOrder < next.startOrder),
    );
    expect(made.length, "at most one upload per response").toBeLessThanOrEqual(1);
    return [made[0] === undefined ? undefined : uploadShape(made[0])];
  });
}

/** A small seeded PRNG (mulberry32), so a scripted sequence is the same on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * An in-process mock (no socket) for the loop's unit tests: the client on its own `ManualClock`,
 * the server on another one that no test advances, so a long-poll with a `pos` parks until
 * something happens (`serverClock.pendingSleeps` counts parked long-polls) and nothing waits in
 * real time.
 */
export interface InProcessSync {
  hs: MockHomeserver;
  clock: ManualClock;
  serverClock: ManualClock;
  alice: DeviceSession;
  bob: DeviceSession;
  client: E2eeClient;
  fetch: FetchLike;
  /** Every request the client sent, with the path and the client clock's time it was sent at. */
  sent: { path: string; at: number }[];
  /** A Client-Server call through the in-process server. */
  call(
    session: DeviceSession,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<Record<string, unknown>>;
}

export async function inProcessSync(
  options: { profile?: ProfileName; client?: Partial<CreateE2eeClientOptions> } = {},
): Promise<InProcessSync> {
  const clock = new ManualClock();
  const serverClock = new ManualClock();
  const hs = createMockHomeserver({ profile: options.profile, clock: serverClock });
  const alice = hs.control.createUser("alice")!;
  const bob = hs.control.createUser("bob")!;
  const sent: InProcessSync["sent"] = [];
  const fetch: FetchLike = (input, init) => {
    sent.push({ path: new URL(input.url).pathname, at: clock.now() });
    return hs.fetch(input, init);
  };
  const client = await createE2eeClient({
    baseUrl: hs.baseUrl,
    ...alice,
    fetch,
    clock,
    random: () => 0.5,
    ...options.client,
  });
  // Published before any sync: the first upload (device keys, 50 one-time keys) is not the loop's.
  await client.processOutgoingRequests();
  hs.control.clearRequestLog();
  sent.length = 0;
  const call = (session: DeviceSession, method: string, path: string, body?: unknown) =>
    matrixCall(hs.baseUrl, session, method, path, body, (input, init) => hs.fetch(input, init));
  return { hs, clock, serverClock, alice, bob, client, fetch, sent, call };
}

/**
 * A position the server accepts on the encryption connection, made by a request of the test's own
 * that enables no extension (so it acknowledges nothing) and then cleared from the request log with
 * everything before it. Scripted answers carry it as their `pos`, so the first request after them
 * reaches the real route and long-polls there.
 */
export async function livePos(
  hs: Pick<MockHomeserver, "control">,
  baseUrl: string,
  session: Pick<DeviceSession, "accessToken">,
  fetchImpl?: (input: string, init: RequestInit) => Promise<Response>,
): Promise<string> {
  const body = await matrixCall(
    baseUrl,
    session,
    "POST",
    `${SLIDING_SYNC_PATH}?timeout=0`,
    { conn_id: ENCRYPTION_CONN_ID },
    fetchImpl,
  );
  hs.control.clearRequestLog();
  return String(body.pos);
}

/** Answers the next sliding-sync request with `body` (a 200 of the test's choosing). */
export function scriptSliding(hs: Pick<MockHomeserver, "control">, body: unknown, times = 1): void {
  hs.control.scriptFailure({ method: "POST", path: SLIDING_SYNC_PATH, status: 200, body, times });
}

/** Answers the next classic `/sync` request with `body`. */
export function scriptClassic(hs: Pick<MockHomeserver, "control">, body: unknown, times = 1): void {
  hs.control.scriptFailure({ method: "GET", path: CLASSIC_SYNC_PATH, status: 200, body, times });
}

/** A plain numbered to-device event as a server delivers it. */
export function seqEvent(sender: string, seq: number): Record<string, unknown> {
  return { type: SEQ_TYPE, sender, content: { seq } };
}

/** One test's mock on a real socket, with what it needs around it. */
export interface SyncServer {
  server: RunningMockServer;
  hs: MockHomeserver;
  /** The server's clock. Never advanced: a long-poll with a `pos` waits until something happens. */
  serverClock: ManualClock;
  watch: LeakWatch;
  /**
   * A client over the socket on its own `ManualClock` (so no retry or backoff ever waits in real
   * time), with fixed jitter, watched for leaks, and closed after the test. In a worker (which
   * takes no clock nor random), on the system clock with real jitter: no test advances this clock.
   */
  open(account: Account, options?: Partial<CreateE2eeClientOptions>): Promise<TestClient>;
}

/**
 * Registers an `afterEach` that closes the test's clients and server, then checks that no access
 * token reached a log line, an error or an event payload. Call once per file; each test then starts
 * its server with the profile it runs on.
 */
export function useSyncServers(): (profile: ProfileName) => Promise<SyncServer> {
  let current: { server: RunningMockServer; watch: LeakWatch; clients: TestClient[] } | undefined;
  afterEach(async () => {
    const ended = current;
    current = undefined;
    if (ended !== undefined) await endTest(ended);
  });
  return async (profile) => {
    const serverClock = new ManualClock();
    const server = await startMockServer({ profile, clock: serverClock });
    const watch = new LeakWatch();
    const clients: TestClient[] = [];
    current = { server, watch, clients };
    return {
      server,
      hs: server.homeserver,
      serverClock,
      watch,
      async open(account, options = {}) {
        const client = await openTestClient(server, account, watch, {
          ...inThreadOnlyOptions({ clock: new ManualClock(), random: () => 0.5 }),
          ...options,
        });
        clients.push(client);
        return client;
      },
    };
  };
}
