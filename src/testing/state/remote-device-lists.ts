import type { Clock } from "../../time/clock.js";
import type { E2eeFlags } from "../e2ee-flags.js";
import { serverNameOf } from "../user-ids.js";
import type { AccountStore } from "./account-store.js";
import { canonicalJson, cloneJson } from "./canonical-json.js";
import { crossSigningPublicKey, type JsonObject, type KeyStore } from "./key-store.js";
import type { RoomStore, StoredEvent } from "./room-store.js";
import type { ToDeviceArrival, ToDeviceStore } from "./to-device-store.js";

/**
 * Simulated federation: the one mock process also hosts users of other server names ("remote
 * servers"). They log in and talk to the same base URL, and their own requests see everyone's
 * true device lists — the test plays their homeservers, which keep no caches. This server's
 * users see a remote user's devices through this server's copy of the list, as a real server
 * serves them (Synapse: `device_lists_remote_cache`), and that copy can go stale:
 *
 * - the server keeps a copy only of users it shares a room with — joined to a room one of its
 *   users is joined to (Synapse's `get_rooms_for_user`) — and forgets it when it no longer does
 *   (`handle_potentially_left_users`); others it asks on their server at each query;
 * - a change of the remote user's true list reaches the copy as a federation device-list update
 *   (`m.device_list_update`) would, at once — unless updates for that user are being lost, or
 *   their server is unreachable (then the update waits and arrives when it is reachable again, as a
 *   sending server catches a destination up after an outage);
 * - a resync (`GET /_matrix/federation/v1/user/devices/{userId}`) replaces the copy with the true
 *   list, if the server is reachable. It runs on the first query, from a test's control, after an
 *   MSC2638 refresh, when a message names a device or key the copy lacks, and as background retries
 *   after a failure (on the server's clock, with backoff) until one succeeds;
 * - a change of the copy is announced to this server's users sharing a room with the remote user
 *   through `device_lists.changed` (`KeyStore.noteCachedDeviceListChange`): every update, and a
 *   resync when it found something new (Synapse's `notify_device_update` in both paths) — or when
 *   an MSC2638 refresh asked for it, changed or not: the MSC has the server relay the result of
 *   the fetch "in sync responses", and a client waits for that to know the refresh is done.
 *
 * A delivered update copies the whole true list, not one device: Synapse applies an update whose
 * `prev_id` it does not know (one after a lost update) by resyncing (`handlers/device.py`
 * `_need_to_do_resync`). What `keys/query` serves from the copy, and what starts a resync, depend
 * on the profile's `remoteDeviceLists` (e2ee-flags.ts). Reachability is only about this server
 * and that one: rooms and to-device messages cross it at once either way, and the remote servers
 * reach each other and this server's users' true lists always.
 */

export type RemoteDeviceListsMode = E2eeFlags["remoteDeviceLists"];

/** Timings and remote servers, `MockHomeserverOptions.federation`. */
export interface FederationOptions {
  /** Remote servers hosted from the start (also `MockControl.addRemoteServer`). */
  remoteServers?: readonly string[];
  /** How long after an MSC2638 refresh the resync runs, on the server's clock. Default 5 ms. */
  refreshDelayMs?: number;
  /** A caller asking to refresh the same user again within this window gets 429. Default 5000 ms. */
  refreshRateLimitMs?: number;
  /**
   * First retry after a failed resync, doubling per further failure (default 30 000 ms, Synapse's
   * `_maybe_retry_device_resync` period), up to `resyncRetryMaxMs` (default 600 000 ms).
   */
  resyncRetryMs?: number;
  resyncRetryMaxMs?: number;
}

export const defaultFederationTimings = Object.freeze({
  refreshDelayMs: 5,
  refreshRateLimitMs: 5_000,
  resyncRetryMs: 30_000,
  resyncRetryMaxMs: 600_000,
});

/** What made the server resync a remote user's list. */
export type RemoteResyncReason = "query" | "refresh" | "unknown-device" | "retry" | "control";

export interface RemoteServerInfo {
  serverName: string;
  reachable: boolean;
}

/** What this server holds of one remote user's device list, next to the truth (`MockControl.remoteCache`). */
export interface RemoteDeviceListCache {
  userId: string;
  serverName: string;
  /**
   * Whether this server holds a copy: it resynced or received an update since it began to share
   * a room with the user (it keeps none of users it shares no room with).
   */
  cached: boolean;
  /** Device ids in the copy, sorted (`[]` when none is held). */
  deviceIds: string[];
  /** Device ids with keys that the user's own server lists now, sorted. */
  trueDeviceIds: string[];
  /** A copy is held and differs from the true list: devices, their keys or signatures, master or self-signing key. */
  stale: boolean;
  /** The server knows the copy may be stale (`device_lists_remote_resync`): a resync failed or is due. */
  markedForResync: boolean;
  /** The last resync failed and neither a resync nor an update repaired the copy since. */
  failing: boolean;
  /** Updates for this user are being lost (`MockControl.loseDeviceListUpdates`). */
  losingUpdates: boolean;
  /** An update waits for the server to become reachable. */
  updatePending: boolean;
  lastResync: { at: number; ok: boolean; reason: RemoteResyncReason } | null;
  /** When the next refresh or retry runs, on the server's clock, and why; `null` when none is due. */
  nextResync: { at: number; reason: "refresh" | "retry" } | null;
}

/** What `keys/query` serves a local user for a remote user. */
export interface RemoteKeysAnswer {
  /** `undefined`: the user is left out of `device_keys`. */
  deviceKeys?: Record<string, JsonObject>;
  master?: JsonObject;
  selfSigning?: JsonObject;
  /** List the user's server in `failures`. */
  failed: boolean;
}

/** A device list as a server sends it over federation: device keys without display names. */
interface ListSnapshot {
  devices: Record<string, JsonObject>;
  master?: JsonObject;
  selfSigning?: JsonObject;
  canonical: string;
}

interface Scheduled {
  at: number;
  reason: "refresh" | "retry";
  abort: AbortController;
}

interface RemoteUser {
  userId: string;
  serverName: string;
  copy?: ListSnapshot;
  markedForResync: boolean;
  failing: boolean;
  losingUpdates: boolean;
  updatePending: boolean;
  consecutiveFailures: number;
  lastResync?: { at: number; ok: boolean; reason: RemoteResyncReason };
  scheduled?: Scheduled;
}

export interface RemoteDeviceListStores {
  keys: KeyStore;
  accounts: AccountStore;
  rooms: RoomStore;
  toDevice: ToDeviceStore;
}

const MEGOLM = "m.megolm.v1.aes-sha2";

export class RemoteDeviceLists {
  readonly #stores: RemoteDeviceListStores;
  readonly #clock: Clock;
  readonly #serverName: string;
  readonly #timings: Readonly<Required<Omit<FederationOptions, "remoteServers">>>;
  /** Remote server name → reachable. */
  readonly #servers = new Map<string, boolean>();
  readonly #users = new Map<string, RemoteUser>();
  /** `caller \0 target` → when the caller's last accepted refresh of the target was. */
  readonly #refreshes = new Map<string, number>();
  #mode: RemoteDeviceListsMode = "synapse";
  #disposed = false;

  constructor(
    stores: RemoteDeviceListStores,
    clock: Clock,
    serverName: string,
    options: FederationOptions = {},
  ) {
    this.#stores = stores;
    this.#clock = clock;
    this.#serverName = serverName;
    this.#timings = checkedTimings(options);
    for (const name of options.remoteServers ?? []) this.addServer(name);
    stores.keys.onChange((change) => {
      if (change.kind === "device-list" && change.copy === "true" && change.onlyFor === undefined) {
        this.#onTrueListChange(change.userId);
      }
    });
    stores.rooms.onChange(({ event }) => this.#onRoomEvent(event));
    stores.toDevice.onChange((arrival) => this.#onToDevice(arrival));
  }

  /** The profile's `remoteDeviceLists`; the server sets it once its profile is resolved. */
  get mode(): RemoteDeviceListsMode {
    return this.#mode;
  }

  set mode(mode: RemoteDeviceListsMode) {
    this.#mode = mode;
  }

  // --- servers ---------------------------------------------------------------------------------

  /** Hosts another server name; false when it is hosted already. Throws `RangeError` for a bad name. */
  addServer(serverName: string): boolean {
    if (typeof serverName !== "string" || !/^[^\s/:@]+(:\d{1,5})?$/.test(serverName)) {
      throw new RangeError(`not a server name: ${JSON.stringify(serverName)}`);
    }
    if (serverName === this.#serverName) throw new RangeError(`${serverName} is this server's own name`);
    if (this.#servers.has(serverName)) return false;
    this.#servers.set(serverName, true);
    return true;
  }

  servers(): RemoteServerInfo[] {
    return [...this.#servers].map(([serverName, reachable]) => ({ serverName, reachable }));
  }

  /** This server's name or a hosted remote one: users may live there. */
  hosts(serverName: string | undefined): boolean {
    return serverName === this.#serverName || (serverName !== undefined && this.#servers.has(serverName));
  }

  isRemoteServer(serverName: string | undefined): boolean {
    return serverName !== undefined && this.#servers.has(serverName);
  }

  /** Whether this server reaches `serverName` (always true for itself; false for servers not hosted). */
  isReachable(serverName: string | undefined): boolean {
    if (serverName === this.#serverName) return true;
    return serverName !== undefined && this.#servers.get(serverName) === true;
  }

  /**
   * Cuts or restores the link between this server and a hosted remote one. Restoring it delivers
   * the updates that waited and brings due retries forward to the first retry interval, as Synapse
   * resets a destination's backoff when it hears from it again.
   */
  setReachable(serverName: string, reachable: boolean): void {
    if (!this.#servers.has(serverName)) throw new RangeError(`${serverName} is not a hosted remote server`);
    if (typeof reachable !== "boolean") throw new RangeError("reachable must be a boolean");
    const was = this.#servers.get(serverName);
    this.#servers.set(serverName, reachable);
    if (!reachable || was) return;
    for (const user of this.#users.values()) {
      if (user.serverName !== serverName) continue;
      if (user.updatePending) this.#applyUpdate(user);
      if (user.scheduled?.reason === "retry") {
        user.consecutiveFailures = 0;
        this.#schedule(user, this.#timings.resyncRetryMs, "retry");
      }
    }
  }

  // --- users -----------------------------------------------------------------------------------

  /** While `lose` is true, changes of the user's true list do not reach this server's copy. */
  setLosingUpdates(userId: string, lose: boolean): void {
    if (typeof lose !== "boolean") throw new RangeError("lose must be a boolean");
    this.#user(this.#requireRemoteUser(userId)).losingUpdates = lose;
  }

  cacheInfo(userId: string): RemoteDeviceListCache {
    const user = this.#user(this.#requireRemoteUser(userId));
    const truth = this.#trueList(userId);
    return {
      userId,
      serverName: user.serverName,
      cached: user.copy !== undefined,
      deviceIds: Object.keys(user.copy?.devices ?? {}).sort(),
      trueDeviceIds: Object.keys(truth.devices).sort(),
      stale: user.copy !== undefined && user.copy.canonical !== truth.canonical,
      markedForResync: user.markedForResync,
      failing: user.failing,
      losingUpdates: user.losingUpdates,
      updatePending: user.updatePending,
      lastResync: user.lastResync ? { ...user.lastResync } : null,
      nextResync: user.scheduled ? { at: user.scheduled.at, reason: user.scheduled.reason } : null,
    };
  }

  /** A resync of a remote user's list now (a test's `resyncRemoteUser`). Throws `RangeError` for a non-remote user. */
  resyncNow(userId: string): boolean {
    return this.#resync(this.#user(this.#requireRemoteUser(userId)), "control");
  }

  /**
   * MSC2638 `devices/refresh` by `callerId` for `targetId`: rate-limited per caller and target
   * (the MSC's reviewers asked for it; the MSC itself names no limit). Returns how long to wait
   * when limited. An accepted refresh of a remote user by a local one marks the user for resync
   * and resyncs after `refreshDelayMs`; for anyone else it does nothing — a local user's list is
   * authoritative, and the remote servers keep no copies.
   */
  requestRefresh(callerId: string, targetId: string): { retryAfterMs: number } | undefined {
    const key = `${callerId}\u0000${targetId}`;
    const now = this.#clock.now();
    const last = this.#refreshes.get(key);
    if (last !== undefined && now - last < this.#timings.refreshRateLimitMs) {
      return { retryAfterMs: this.#timings.refreshRateLimitMs - (now - last) };
    }
    this.#refreshes.set(key, now);
    if (serverNameOf(callerId) !== this.#serverName || !this.isRemoteServer(serverNameOf(targetId))) return;
    const user = this.#user(targetId);
    user.markedForResync = true;
    this.#schedule(user, this.#timings.refreshDelayMs, "refresh");
    return undefined;
  }

  /**
   * `keys/query` of a remote user by a local one (`viewer`), by the profile's `remoteDeviceLists`:
   * see e2ee-flags.ts. `wanted` are the device ids asked for (`[]`: all).
   */
  query(userId: string, wanted: readonly string[], viewer: string): RemoteKeysAnswer {
    const live = (): RemoteKeysAnswer =>
      this.isReachable(serverNameOf(userId))
        ? this.#answer(userId, this.#trueList(userId), wanted, viewer, false)
        : { failed: true };
    // Without a shared room Synapse neither caches nor resyncs: it asks the user's server
    // (`_query_devices_for_destination` resyncs only users with rooms).
    if (this.#mode === "federation" || !this.#sharesRoom(userId)) return live();
    const user = this.#user(userId);
    const needsFetch = user.copy === undefined || (this.#mode === "synapse" && user.markedForResync);
    if (needsFetch && this.#mode === "synapse" && wanted.length > 0) {
      // Synapse resyncs only for a query of the whole list; one naming devices is sent on to the
      // user's server (`query_client_keys`) and its answer is not cached. Cross-signing keys come
      // from the cache first and are replaced by the remote's.
      const answer = live();
      return answer.failed ? this.#answer(userId, user.copy, wanted, viewer, true, true) : answer;
    }
    if (needsFetch) this.#resync(user, "query");
    if (this.#mode === "synapse" && user.markedForResync) {
      return this.#answer(userId, user.copy, wanted, viewer, true, true);
    }
    return this.#answer(userId, user.copy, wanted, viewer, user.failing);
  }

  /** Whether `callerId` can claim keys of `targetId` now: a local caller needs the target's server reachable. */
  canReach(callerId: string, targetId: string): boolean {
    const target = serverNameOf(targetId);
    if (serverNameOf(callerId) !== this.#serverName) return this.hosts(target);
    return this.isReachable(target);
  }

  /** Cancels every waiting refresh and retry, and schedules none from now on (nothing keeps a process alive). */
  dispose(): void {
    this.#disposed = true;
    for (const user of this.#users.values()) {
      user.scheduled?.abort.abort();
      user.scheduled = undefined;
    }
  }

  // --- internals -------------------------------------------------------------------------------

  #requireRemoteUser(userId: string): string {
    const server = serverNameOf(userId);
    if (!this.isRemoteServer(server))
      throw new RangeError(`${userId} is not a user of a hosted remote server`);
    if (!this.#stores.accounts.userExists(userId)) throw new RangeError(`unknown user ${userId}`);
    return userId;
  }

  #user(userId: string): RemoteUser {
    let user = this.#users.get(userId);
    if (!user) {
      user = {
        userId,
        serverName: serverNameOf(userId) ?? "",
        markedForResync: false,
        failing: false,
        losingUpdates: false,
        updatePending: false,
        consecutiveFailures: 0,
      };
      this.#users.set(userId, user);
    }
    return user;
  }

  /** The user's list as their own server would send it over federation. */
  #trueList(userId: string): ListSnapshot {
    const { keys, accounts } = this.#stores;
    const devices: Record<string, JsonObject> = {};
    for (const deviceId of keys.deviceIdsWithKeys(userId).sort()) {
      const json = accounts.device(userId, deviceId) ? keys.deviceKeys(userId, deviceId) : undefined;
      if (!json) continue;
      // Display names stay home: Synapse's `allow_device_name_lookup_over_federation` is off by
      // default, and tuwunel's `allow_device_name_federation` too.
      json.unsigned = {};
      devices[deviceId] = json;
    }
    const master = keys.crossSigningKeyAsUploaded(userId, "master");
    const selfSigning = keys.crossSigningKeyAsUploaded(userId, "self_signing");
    const snapshot: ListSnapshot = {
      devices,
      canonical: canonicalJson({ devices, master: master ?? null, self_signing: selfSigning ?? null }),
    };
    if (master) snapshot.master = master;
    if (selfSigning) snapshot.selfSigning = selfSigning;
    return snapshot;
  }

  #answer(
    userId: string,
    list: ListSnapshot | undefined,
    wanted: readonly string[],
    viewer: string,
    failed: boolean,
    withoutDevices = false,
  ): RemoteKeysAnswer {
    const answer: RemoteKeysAnswer = { failed };
    if (!list) return answer;
    if (!withoutDevices) {
      const deviceKeys: Record<string, JsonObject> = {};
      for (const deviceId of wanted.length > 0 ? wanted : Object.keys(list.devices)) {
        const json = list.devices[deviceId];
        if (json) deviceKeys[deviceId] = cloneJson(json);
      }
      answer.deviceKeys = deviceKeys;
    }
    // Signatures the viewer made on the keys are this server's own data, always current.
    if (list.master) answer.master = this.#withViewerSignatures(list.master, userId, viewer);
    if (list.selfSigning) answer.selfSigning = this.#withViewerSignatures(list.selfSigning, userId, viewer);
    return answer;
  }

  #withViewerSignatures(json: JsonObject, userId: string, viewer: string): JsonObject {
    return this.#stores.keys.withSignaturesBy(json, userId, crossSigningPublicKey(json) ?? "", viewer);
  }

  /** Replaces the copy with the true list if the server is reachable; records a failure otherwise. */
  #resync(user: RemoteUser, reason: RemoteResyncReason): boolean {
    const at = this.#clock.now();
    if (!this.isReachable(user.serverName)) {
      user.lastResync = { at, ok: false, reason };
      // Synapse marks a user whose resync failed (`multi_user_device_resync`, mark_failed_as_stale).
      user.markedForResync = true;
      user.failing = true;
      // A failure while a run is already due (a query during an outage) does not push it back.
      if (!user.scheduled) {
        user.consecutiveFailures++;
        this.#schedule(user, this.#retryDelay(user), "retry");
      }
      return false;
    }
    if (!this.#sharesRoom(user.userId)) {
      // Nothing to keep: the server tracks only users it shares a room with.
      this.#untrack(user);
      user.lastResync = { at, ok: true, reason };
      return true;
    }
    const truth = this.#trueList(user.userId);
    const changed = user.copy?.canonical !== truth.canonical;
    user.copy = truth;
    user.lastResync = { at, ok: true, reason };
    this.#repaired(user);
    if (changed || reason === "refresh") this.#stores.keys.noteCachedDeviceListChange(user.userId);
    return true;
  }

  #applyUpdate(user: RemoteUser): void {
    user.copy = this.#trueList(user.userId);
    this.#repaired(user);
    this.#stores.keys.noteCachedDeviceListChange(user.userId);
  }

  #repaired(user: RemoteUser): void {
    user.markedForResync = false;
    user.failing = false;
    user.updatePending = false;
    user.consecutiveFailures = 0;
    if (user.scheduled?.reason === "retry") {
      user.scheduled.abort.abort();
      user.scheduled = undefined;
    }
  }

  /** Forgets the copy of a user the server no longer shares a room with. */
  #untrack(user: RemoteUser): void {
    delete user.copy;
    this.#repaired(user);
    user.scheduled?.abort.abort();
    user.scheduled = undefined;
  }

  #retryDelay(user: RemoteUser): number {
    const { resyncRetryMs, resyncRetryMaxMs } = this.#timings;
    const factor = 2 ** Math.min(30, Math.max(0, user.consecutiveFailures - 1));
    return Math.min(resyncRetryMaxMs, resyncRetryMs * factor);
  }

  /** Runs a resync after `delayMs` on the clock; the earlier of two due runs is kept. */
  #schedule(user: RemoteUser, delayMs: number, reason: "refresh" | "retry"): void {
    if (this.#disposed) return;
    const at = this.#clock.now() + delayMs;
    if (user.scheduled && user.scheduled.at <= at) return;
    user.scheduled?.abort.abort();
    const abort = new AbortController();
    user.scheduled = { at, reason, abort };
    this.#clock.sleep(delayMs, abort.signal).then(
      () => {
        if (user.scheduled?.abort !== abort) return;
        user.scheduled = undefined;
        this.#resync(user, reason);
      },
      () => {
        // Replaced by an earlier run, or disposed.
      },
    );
  }

  #onTrueListChange(userId: string): void {
    if (!this.isRemoteServer(serverNameOf(userId))) return;
    const user = this.#user(userId);
    // Updates go only to servers that share a room with the user, and Synapse drops others.
    if (user.losingUpdates || !this.#sharesRoom(userId)) return;
    if (!this.isReachable(user.serverName)) {
      user.updatePending = true;
      return;
    }
    this.#applyUpdate(user);
  }

  #isLocal(userId: string): boolean {
    return serverNameOf(userId) === this.#serverName;
  }

  /** Whether a remote user is joined to a room this server is in (Synapse's `get_rooms_for_user`). */
  #sharesRoom(userId: string): boolean {
    const { rooms } = this.#stores;
    for (const [roomId, membership] of rooms.roomsOf(userId)) {
      if (membership === "join" && rooms.joinedMembers(roomId).some((u) => this.#isLocal(u))) return true;
    }
    return false;
  }

  /**
   * Membership changes may end the sharing of a room (the copy is forgotten); a federated
   * `m.room.encrypted` is checked as Synapse checks it (`handlers/federation_event.py`).
   */
  #onRoomEvent(event: StoredEvent): void {
    if (event.type === "m.room.member") {
      for (const member of this.#stores.rooms.members(event.roomId).keys()) {
        const user = this.#users.get(member);
        if (user?.copy && !this.#sharesRoom(member)) this.#untrack(user);
      }
      return;
    }
    if (this.#mode === "federation" || event.type !== "m.room.encrypted") return;
    if (!this.isRemoteServer(serverNameOf(event.sender))) return;
    // The event reaches this server only if one of its users is in the room.
    if (!this.#stores.rooms.joinedMembers(event.roomId).some((u) => this.#isLocal(u))) return;
    const user = this.#user(event.sender);
    const cached = user.copy?.devices ?? {};
    const deviceId = stringOrUndefined(event.content.device_id);
    const senderKey = stringOrUndefined(event.content.sender_key);
    let resync = false;
    const device = deviceId !== undefined ? cached[deviceId] : undefined;
    if (deviceId !== undefined && !device) resync = true;
    if (senderKey !== undefined) {
      let expected: unknown[] = [];
      if (device) {
        const keys = keyMap(device);
        // For Megolm the sender key must be the device's Curve25519 key; otherwise any of its keys.
        expected =
          event.content.algorithm === MEGOLM ? [keys[`curve25519:${deviceId}`]] : Object.values(keys);
      } else if (deviceId === undefined) {
        expected = Object.values(cached).flatMap((d) => Object.values(keyMap(d)));
      }
      if (!expected.includes(senderKey)) resync = true;
    }
    if (resync) this.#resyncForUnknownDevice(user);
  }

  /** To-device checks: Synapse's `_check_for_unknown_devices`, and under `"msc"` Olm sender keys. */
  #onToDevice(arrival: ToDeviceArrival): void {
    if (this.#mode === "federation") return;
    const { event } = arrival;
    if (!this.#isLocal(arrival.userId) || !this.isRemoteServer(serverNameOf(event.sender))) return;
    const user = this.#user(event.sender);
    const cached = user.copy?.devices ?? {};
    if (event.type === "m.room_key_request") {
      const requesting = event.content.requesting_device_id;
      // Synapse ignores key requests from users it shares no room with.
      if (!this.#sharesRoom(event.sender)) return;
      if (typeof requesting !== "string" || !Object.hasOwn(cached, requesting)) {
        this.#resyncForUnknownDevice(user);
      }
    } else if (event.type === "m.room.encrypted" && this.#mode === "msc") {
      const senderKey = event.content.sender_key;
      if (typeof senderKey !== "string" || !this.#sharesRoom(event.sender)) return;
      const known = Object.values(cached).some((d) => Object.values(keyMap(d)).includes(senderKey));
      if (!known) this.#resyncForUnknownDevice(user);
    }
  }

  #resyncForUnknownDevice(user: RemoteUser): void {
    // Marked first, as Synapse's `_resync_device` marks before it resyncs in the background.
    user.markedForResync = true;
    this.#resync(user, "unknown-device");
  }
}

function checkedTimings(options: FederationOptions): Required<Omit<FederationOptions, "remoteServers">> {
  const timings: Record<keyof typeof defaultFederationTimings, number> = { ...defaultFederationTimings };
  for (const name of Object.keys(defaultFederationTimings) as (keyof typeof defaultFederationTimings)[]) {
    const value = options[name];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`federation.${name} must be a non-negative integer`);
    }
    timings[name] = value;
  }
  if (timings.resyncRetryMs === 0) throw new RangeError("federation.resyncRetryMs must be positive");
  if (timings.resyncRetryMaxMs < timings.resyncRetryMs) {
    throw new RangeError("federation.resyncRetryMaxMs must be at least resyncRetryMs");
  }
  return timings;
}

function keyMap(deviceKeys: JsonObject): Record<string, unknown> {
  const keys = deviceKeys.keys;
  return typeof keys === "object" && keys !== null && !Array.isArray(keys)
    ? (keys as Record<string, unknown>)
    : {};
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}
