/**
 * Which devices a test injected as the server (`MockControl.injectDeviceKeys`): extra devices of a
 * user that no client of the user created. Like the dehydrated-device store, this only remembers
 * which ones they are — their rows, keys and to-device inboxes live in the account, key and
 * to-device stores like any device's — so that a second injection with the same id can replace
 * the device it made, and never a device the user created. `deleteDevice` (device-lifecycle.ts)
 * calls `forget`, so a device deleted any way (`/devices`, `logout/all`) is no longer injected.
 */
export class InjectedDeviceStore {
  readonly #byUser = new Map<string, Set<string>>();

  has(userId: string, deviceId: string): boolean {
    return this.#byUser.get(userId)?.has(deviceId) ?? false;
  }

  /** The user's injected devices, oldest first. */
  deviceIds(userId: string): string[] {
    return [...(this.#byUser.get(userId) ?? [])];
  }

  add(userId: string, deviceId: string): void {
    let ids = this.#byUser.get(userId);
    if (!ids) {
      ids = new Set();
      this.#byUser.set(userId, ids);
    }
    ids.add(deviceId);
  }

  /** Returns whether the device was an injected one. */
  forget(userId: string, deviceId: string): boolean {
    const ids = this.#byUser.get(userId);
    if (!ids?.delete(deviceId)) return false;
    if (ids.size === 0) this.#byUser.delete(userId);
    return true;
  }
}
