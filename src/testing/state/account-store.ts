import { newAccessToken, newDeviceId } from "../random-ids.js";
import type { Caller } from "../route.js";

export interface DeviceRecord {
  deviceId: string;
  displayName: string | null;
  lastSeenTs: number | null;
  lastSeenIp: string | null;
}

interface Account {
  userId: string;
  password: string;
  devices: Map<string, DeviceRecord>;
  /** Access tokens per device: logging in again with an existing device id adds a token. */
  tokensByDevice: Map<string, Set<string>>;
}

/**
 * Users, their devices and access tokens. Every lookup is a map hit (user → account, token →
 * caller), so the cost of a request does not grow with the number of users or devices.
 */
export class AccountStore {
  readonly #accounts = new Map<string, Account>();
  readonly #tokens = new Map<string, { userId: string; deviceId: string }>();
  #nextNumericLocalpart = 1;

  userExists(userId: string): boolean {
    return this.#accounts.has(userId);
  }

  deviceIds(userId: string): string[] {
    return [...(this.#accounts.get(userId)?.devices.keys() ?? [])];
  }

  hasDevice(userId: string, deviceId: string): boolean {
    return this.#accounts.get(userId)?.devices.has(deviceId) ?? false;
  }

  device(userId: string, deviceId: string): DeviceRecord | undefined {
    return this.#accounts.get(userId)?.devices.get(deviceId);
  }

  devices(userId: string): DeviceRecord[] {
    return [...(this.#accounts.get(userId)?.devices.values() ?? [])];
  }

  /** A numeric localpart that is free, as Synapse picks when `username` is omitted. */
  nextFreeNumericLocalpart(serverName: string): string {
    while (this.#accounts.has(`@${this.#nextNumericLocalpart}:${serverName}`)) this.#nextNumericLocalpart++;
    return String(this.#nextNumericLocalpart++);
  }

  createAccount(userId: string, password: string): void {
    this.#accounts.set(userId, { userId, password, devices: new Map(), tokensByDevice: new Map() });
  }

  checkPassword(userId: string, password: string): boolean {
    const account = this.#accounts.get(userId);
    return account !== undefined && account.password === password;
  }

  /**
   * Adds a device (or reuses the caller-chosen id if it exists) and a fresh access token for it.
   * Returns whether the device is new, so callers know to announce a device-list change.
   */
  addDeviceWithToken(
    userId: string,
    options: { deviceId?: string; displayName?: string | null; now: number },
  ): { deviceId: string; accessToken: string; created: boolean } {
    const account = this.#accounts.get(userId);
    if (!account) throw new Error("addDeviceWithToken: unknown user");
    let deviceId = options.deviceId;
    while (deviceId === undefined || (options.deviceId === undefined && account.devices.has(deviceId))) {
      deviceId = newDeviceId();
    }
    const created = !account.devices.has(deviceId);
    if (created) {
      account.devices.set(deviceId, {
        deviceId,
        displayName: options.displayName ?? null,
        lastSeenTs: options.now,
        lastSeenIp: null,
      });
    }
    const accessToken = newAccessToken();
    let tokens = account.tokensByDevice.get(deviceId);
    if (!tokens) {
      tokens = new Set();
      account.tokensByDevice.set(deviceId, tokens);
    }
    tokens.add(accessToken);
    this.#tokens.set(accessToken, { userId, deviceId });
    return { deviceId, accessToken, created };
  }

  /** Adds a device without a token (e.g. a dehydrated device). Returns false if it existed. */
  addDevice(userId: string, device: DeviceRecord): boolean {
    const account = this.#accounts.get(userId);
    if (!account) throw new Error("addDevice: unknown user");
    if (account.devices.has(device.deviceId)) return false;
    account.devices.set(device.deviceId, { ...device });
    return true;
  }

  authenticate(accessToken: string): Caller | undefined {
    const hit = this.#tokens.get(accessToken);
    return hit ? { ...hit, accessToken } : undefined;
  }

  setDisplayName(userId: string, deviceId: string, displayName: string | null): boolean {
    const device = this.#accounts.get(userId)?.devices.get(deviceId);
    if (!device) return false;
    device.displayName = displayName;
    return true;
  }

  touch(userId: string, deviceId: string, now: number, ip: string | null): void {
    const device = this.#accounts.get(userId)?.devices.get(deviceId);
    if (!device) return;
    device.lastSeenTs = now;
    if (ip !== null) device.lastSeenIp = ip;
  }

  /** Forgets one access token, keeping its device (a superseded refreshable token). */
  revokeAccessToken(accessToken: string): boolean {
    const hit = this.#tokens.get(accessToken);
    if (!hit) return false;
    this.#tokens.delete(accessToken);
    this.#accounts.get(hit.userId)?.tokensByDevice.get(hit.deviceId)?.delete(accessToken);
    return true;
  }

  /** Removes the device and every access token issued for it. Returns false if there was none. */
  removeDevice(userId: string, deviceId: string): boolean {
    const account = this.#accounts.get(userId);
    if (!account) return false;
    for (const token of account.tokensByDevice.get(deviceId) ?? []) this.#tokens.delete(token);
    account.tokensByDevice.delete(deviceId);
    return account.devices.delete(deviceId);
  }
}
