import type { ControlledServer } from "./controlled-server.js";
import { type InjectDehydratedDeviceOptions, injectDehydratedDevice } from "./dehydration-control.js";
import type { FaultInjector, FaultSettings, ScriptedFailure, ScriptedFailureSpec } from "./faults.js";
import {
  type InjectDeviceKeysOptions,
  type InjectedDevice,
  injectDeviceKeys,
} from "./injected-device-control.js";
import type { RequestLog, RequestLogEntry } from "./request-log.js";
import { expireAccessToken as expireToken } from "./session-tokens.js";
import type {
  DehydratedDeviceRecord,
  DehydratedEventsFault,
  DehydratedEventsFaultSpec,
} from "./state/dehydrated-device-store.js";
import { loginNewDevice } from "./state/device-lifecycle.js";
import type { RemoteDeviceListCache, RemoteServerInfo } from "./state/remote-device-lists.js";
import type { TokenLifetimes } from "./state/session-token-store.js";
import type { SlidingConnectionInfo, SlidingConnectionMatch } from "./state/sliding-connections.js";
import type { ToDeviceMessages } from "./state/to-device-delivery.js";
import {
  sendToDeviceAs,
  type ToDeviceInbox,
  type ToDeviceInboxOptions,
  type ToDeviceSender,
  toDeviceInbox,
} from "./to-device-control.js";
import { localpartProblem } from "./user-ids.js";

/**
 * The in-process control API; `routes/control.ts` serves the same calls over HTTP under `/_mock/`.
 * Later features add their controls as methods here plus a route each.
 */
export class MockControl {
  readonly server: ControlledServer;
  readonly #faults: FaultInjector;
  readonly #log: RequestLog;

  constructor(server: ControlledServer, faults: FaultInjector, log: RequestLog) {
    this.server = server;
    this.#faults = faults;
    this.#log = log;
  }

  faults(): FaultSettings {
    return this.#faults.settings();
  }

  /** Changes some fault settings; throws `RangeError` for out-of-range values. */
  setFaults(changes: Partial<FaultSettings>): FaultSettings {
    return this.#faults.configure(changes);
  }

  /**
   * The next matching request(s) fail as described — before or after being processed, by a dropped
   * connection, an error, or a `body`/`rawBody` of the test's choosing (also with a 2xx status, for
   * a success the client cannot parse). Throws `RangeError` for a bad spec.
   */
  scriptFailure(spec: ScriptedFailureSpec): ScriptedFailure {
    return this.#faults.script(spec);
  }

  scriptedFailures(): ScriptedFailure[] {
    return this.#faults.scripted();
  }

  clearScriptedFailures(): void {
    this.#faults.clearScripted();
  }

  requestLog(): RequestLogEntry[] {
    return this.#log.entries();
  }

  clearRequestLog(): void {
    this.#log.clear();
  }

  /**
   * MSC3814: makes a device the user's dehydrated device with no checks at all (any id, keys and
   * `device_data`), replacing the previous one — for hostile-server tests. Throws `RangeError`
   * for an unknown user.
   */
  injectDehydratedDevice(userId: string, options: InjectDehydratedDeviceOptions): DehydratedDeviceRecord {
    return injectDehydratedDevice(this.server.state, userId, options);
  }

  /** The user's dehydrated device as the server has it, or `undefined`. */
  dehydratedDevice(userId: string): DehydratedDeviceRecord | undefined {
    return this.server.state.dehydratedDevices.get(userId);
  }

  /**
   * Makes `…/dehydrated_device/{id}/events` misbehave (repeat its cursor forever, or never end),
   * replacing any previous such fault. Throws `RangeError` for a bad spec.
   */
  setDehydratedEventsFault(spec: DehydratedEventsFaultSpec): DehydratedEventsFault {
    return this.server.state.dehydratedDevices.setEventsFault(spec);
  }

  dehydratedEventsFault(): DehydratedEventsFault | undefined {
    return this.server.state.dehydratedDevices.eventsFault();
  }

  clearDehydratedEventsFault(): void {
    this.server.state.dehydratedDevices.clearEventsFault();
  }

  /**
   * Expires simplified sliding sync connections (MSC4186) of a user — narrowed to one device and/or
   * `conn_id` when given — as a server does after 7 idle days: the next request with one of their
   * `pos` values gets 400 `M_UNKNOWN_POS`. Returns how many connections were expired.
   */
  expireSlidingSyncConnections(match: SlidingConnectionMatch): number {
    return this.server.state.slidingSync.expire(match);
  }

  /** The live simplified sliding sync connections, of one user when `userId` is given. */
  slidingSyncConnections(userId?: string): SlidingConnectionInfo[] {
    return this.server.state.slidingSync.connections(userId);
  }

  /**
   * Makes the server refuse `accessToken` with 401 `M_UNKNOWN_TOKEN` and `soft_logout`
   * (spec "Soft logout"). `softLogout` defaults to true, as Synapse answers every expired token;
   * `false` plays a revoked token, refused even by `/logout`. The session's refresh token, if
   * any, keeps working. Throws `RangeError` for an unknown token.
   */
  expireAccessToken(accessToken: string, options: { softLogout?: boolean } = {}): void {
    expireToken(this.server.state, accessToken, options.softLogout ?? true);
  }

  /** Lifetimes of refreshable sessions (spec "Refreshing access tokens"); both `null` by default. */
  tokenLifetimes(): TokenLifetimes {
    return this.server.state.sessionTokens.lifetimes();
  }

  /**
   * Sets how long access tokens issued with a refresh token, and refresh tokens, live (on the
   * server's clock), for tokens issued from now on. Throws `RangeError` for a value that is not a
   * positive integer or `null`.
   */
  setTokenLifetimes(changes: Partial<TokenLifetimes>): TokenLifetimes {
    return this.server.state.sessionTokens.setLifetimes(changes);
  }

  /**
   * What waits in a device's to-device inbox, read without acknowledging anything. `nextBatch`
   * continues the read and also works as sliding sync's `to_device.since`. Throws `RangeError`
   * for an unknown device or a bad `since`/`limit`.
   */
  toDeviceInbox(userId: string, deviceId: string, options: ToDeviceInboxOptions = {}): ToDeviceInbox {
    return toDeviceInbox(this.server.state, userId, deviceId, options);
  }

  /**
   * Adds an extra device to a user's device list — or replaces the one injected earlier with that
   * id — as a hostile server could (servers check no device signature): `keys/query` serves its
   * `deviceKeys` as given, `keys/claim` hands out its keys, `GET /devices` lists it, to-device
   * messages reach it (`toDeviceInbox` reads them), and users sharing a room with its owner see
   * the device-list change as after a login. The user's own devices, the dehydrated one included,
   * are left alone. Throws `RangeError` for an unknown user, an empty id or one naming a device
   * the user created, device keys naming another user or device, or a malformed key id.
   */
  injectDeviceKeys(userId: string, options: InjectDeviceKeysOptions): InjectedDevice {
    return injectDeviceKeys(this.server.state, userId, options);
  }

  /**
   * Delivers to-device messages (`{[userId]: {[deviceId | "*"]: content}}`, the `sendToDevice`
   * body shape) as though `sender` — any device of the user, dehydrated or injected included —
   * had sent them. Returns how many events were delivered. Throws `RangeError` for an unknown
   * sender device, an empty event type or a malformed `messages`.
   */
  sendToDeviceAs(sender: ToDeviceSender, eventType: string, messages: ToDeviceMessages): number {
    return sendToDeviceAs(this.server.state, sender, eventType, messages);
  }

  /**
   * Hosts another server name in this process (simulated federation): `createUser` can then make
   * its users, who log in and talk to the same base URL. Their own requests see everyone's true
   * device lists; this server's users see theirs through this server's copy (docs/mock-homeserver.md,
   * "Federation"). Returns false when the server is hosted already. Throws `RangeError` for a
   * malformed name or this server's own.
   */
  addRemoteServer(serverName: string): boolean {
    return this.server.state.remoteDeviceLists.addServer(serverName);
  }

  /** The hosted remote servers and whether this server reaches each. */
  remoteServers(): RemoteServerInfo[] {
    return this.server.state.remoteDeviceLists.servers();
  }

  /**
   * Cuts (`false`) or restores the link between this server and a hosted remote one. While cut, a
   * resync of its users' lists fails and is retried in the background (with backoff, on the server's
   * clock), their device-list updates wait, `keys/claim` lists the server in `failures`, and so does
   * `keys/query` when it has nothing cached or a resync failed (per `remoteDeviceLists`). Restoring
   * it delivers the waiting updates and brings retries forward. Throws `RangeError` for a server
   * that is not hosted.
   */
  setRemoteServerReachable(serverName: string, reachable: boolean): void {
    this.server.state.remoteDeviceLists.setReachable(serverName, reachable);
  }

  /**
   * While `lose` is true, changes of a remote user's true device list never reach this server's
   * copy (lost federation updates), so it goes stale until a resync. Throws `RangeError` for a user
   * who is not a user of a hosted remote server.
   */
  loseDeviceListUpdates(userId: string, lose: boolean): void {
    this.server.state.remoteDeviceLists.setLosingUpdates(userId, lose);
  }

  /** What this server holds of a remote user's device list, beside their true list. Throws as `loseDeviceListUpdates`. */
  remoteCache(userId: string): RemoteDeviceListCache {
    return this.server.state.remoteDeviceLists.cacheInfo(userId);
  }

  /**
   * Resyncs this server's copy of a remote user's list now, as a server-side resync would: the
   * copy becomes the true list (announced through `device_lists.changed` if it changed) when the
   * user's server is reachable; otherwise the failure is recorded and retried in the background.
   * Returns the copy afterwards. Throws as `loseDeviceListUpdates`.
   */
  resyncRemoteUser(userId: string): RemoteDeviceListCache {
    const lists = this.server.state.remoteDeviceLists;
    lists.resyncNow(userId);
    return lists.cacheInfo(userId);
  }

  /** No latency or faults, seed restarted, nothing scripted, empty log. Accounts and keys stay. */
  reset(): void {
    this.#faults.reset();
    this.#log.clear();
    this.server.state.dehydratedDevices.clearEventsFault();
  }

  /**
   * Creates a user with one logged-in device, skipping registration's UIA — a shortcut for test
   * setup. `server` makes a user of a hosted remote server (`addRemoteServer`); default this
   * server. Returns undefined when the user id is taken.
   */
  createUser(
    localpart: string,
    options: { password?: string; deviceId?: string; displayName?: string; server?: string } = {},
  ): { userId: string; deviceId: string; accessToken: string } | undefined {
    const state = this.server.state;
    const server = options.server ?? state.serverName;
    if (!state.remoteDeviceLists.hosts(server)) {
      throw new RangeError(`${server} is neither this server nor a hosted remote server`);
    }
    const problem = localpartProblem(localpart.toLowerCase(), server);
    if (problem) throw new RangeError(problem);
    const userId = `@${localpart.toLowerCase()}:${server}`;
    if (state.accounts.userExists(userId)) return undefined;
    state.accounts.createAccount(userId, options.password ?? "password");
    const device = loginNewDevice(state, userId, {
      ...(options.deviceId !== undefined ? { deviceId: options.deviceId } : {}),
      displayName: options.displayName ?? null,
    });
    return { userId, ...device };
  }
}
