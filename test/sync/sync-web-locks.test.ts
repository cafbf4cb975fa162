import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { loadCryptoWasm } from "../../src/crypto/load-wasm.js";
import type { Logger } from "../../src/logger.js";
import {
  type InProcessSync,
  inProcessSync,
  SyncRecorder,
  waitUntil,
} from "../integration/support/sync-fixtures.js";

/**
 * Across tabs and windows of one origin, the device's connection is guarded by a Web Lock, as the
 * in-process claim guards it within one context: the server acknowledges to-device messages per
 * device (MSC3885), so a second reader in another tab deletes this one's. Not only `start()` takes
 * it: the app's extension and its classic feed read the same stream and take the same lock. Node
 * has no Web Locks, so these tests put a lock manager on `navigator` that keeps the Web Locks rules
 * the SDK relies on (exclusive, FIFO, `ifAvailable` answers `null` when held, a `signal` abort
 * takes a waiting request out of the queue and rejects it with the signal's reason); the test
 * itself plays the other tab.
 */

/** Exclusive-mode Web Locks, as `LockManager.request` behaves in browsers. */
class LockManager {
  readonly #held = new Set<string>();
  readonly #waiting = new Map<string, (() => void)[]>();

  isHeld(name: string): boolean {
    return this.#held.has(name);
  }

  async request(
    name: string,
    options: { signal?: AbortSignal; ifAvailable?: boolean },
    callback: (lock: unknown) => Promise<void>,
  ): Promise<void> {
    const { signal } = options;
    signal?.throwIfAborted();
    if (this.#held.has(name)) {
      if (options.ifAvailable) return callback(null);
      await new Promise<void>((resolve, reject) => {
        const queue = this.#waiting.get(name) ?? [];
        this.#waiting.set(name, queue);
        const onAbort = () => {
          queue.splice(queue.indexOf(grant), 1);
          reject(signal?.reason);
        };
        const grant = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        queue.push(grant);
      });
    } else {
      this.#held.add(name);
    }
    try {
      return await callback({ name, mode: "exclusive" });
    } finally {
      // Handed on to the next waiter, or given up.
      const next = this.#waiting.get(name)?.shift();
      if (next) next();
      else this.#held.delete(name);
    }
  }
}

/** Another tab of the origin holding the lock until `letGo()`. */
function otherTabHolds(locks: LockManager, name: string): { letGo: () => void; done: Promise<void> } {
  let letGo!: () => void;
  const released = new Promise<void>((resolve) => {
    letGo = resolve;
  });
  const done = locks.request(name, {}, () => released);
  return { letGo, done };
}

let locks: LockManager;
let current: InProcessSync | undefined;

beforeAll(() => loadCryptoWasm());

beforeEach(() => {
  locks = new LockManager();
  vi.stubGlobal("navigator", { locks });
});

afterEach(async () => {
  await current?.client.close();
  current = undefined;
  vi.unstubAllGlobals();
});

async function setup(logger?: Logger): Promise<InProcessSync> {
  current = await inProcessSync(logger === undefined ? {} : { client: { logger } });
  return current;
}

function lockNameOf(s: InProcessSync): string {
  return `matrix-e2ee-devices/sync/${s.alice.userId}/${s.alice.deviceId}`;
}

const classicResponse = (n: number) => ({ next_batch: `s${n}` });

describe("the app's extension and classic feed take the device's Web Lock", () => {
  it("extension() waits while another tab holds the lock, takes it once that one lets go, and gives it back on release", async () => {
    const s = await setup();
    const name = lockNameOf(s);
    const seen = new SyncRecorder(s.client);
    const other = otherTabHolds(locks, name);
    let resolved = false;
    const pending = s.client.sync.extension().then((extension) => {
      resolved = true;
      return extension;
    });

    await waitUntil("the extension waits for the lock", () => seen.of("sync.waitingForLock").length === 1);
    expect(seen.of("sync.waitingForLock")).toEqual([{ mode: "extension", lockName: name }]);
    expect(await s.client.sync.status()).toMatchObject({ state: "waiting_for_lock", mode: "extension" });
    expect(resolved).toBe(false);
    expect(seen.of("sync.running")).toEqual([]);

    other.letGo();
    await other.done;
    const extension = await pending;
    expect(seen.of("sync.running")).toEqual([{ mode: "extension" }]);
    expect(await s.client.sync.status()).toMatchObject({ state: "running", mode: "extension" });
    // Held now: the other tab is the one that waits.
    expect(locks.isHeld(name)).toBe(true);
    let granted: unknown = "not asked";
    await locks.request(name, { ifAvailable: true }, async (lock) => {
      granted = lock;
    });
    expect(granted).toBeNull();

    await extension.release();
    expect(locks.isHeld(name)).toBe(false);
    expect(seen.of("sync.stopped")).toEqual([{ mode: "extension" }]);
  });

  it("stop() while extension() waits ends the wait with sync_stopped and frees the device", async () => {
    const s = await setup();
    const other = otherTabHolds(locks, lockNameOf(s));
    const seen = new SyncRecorder(s.client);
    const pending = s.client.sync.extension().catch((error: unknown) => error);
    await waitUntil("the extension waits for the lock", () => seen.of("sync.waitingForLock").length === 1);

    await s.client.sync.stop();
    expect(await pending).toMatchObject({ code: "sync_stopped" });
    expect(await s.client.sync.status()).toMatchObject({ state: "stopped" });
    expect(seen.of("sync.stopped")).toEqual([{ mode: "extension" }]);
    // The other tab still holds it; this context may claim again (and waits again).
    expect(locks.isHeld(lockNameOf(s))).toBe(true);
    other.letGo();
    await other.done;
    expect(locks.isHeld(lockNameOf(s))).toBe(false);
  });

  it("receiveClassic() processes nothing while another tab holds the lock; every response waits, then all go in order", async () => {
    const s = await setup();
    const name = lockNameOf(s);
    const other = otherTabHolds(locks, name);
    const crypto = vi.spyOn(s.client.olmMachine, "receiveSyncChanges");
    const seen = new SyncRecorder(s.client);
    const first = s.client.sync.receiveClassic(classicResponse(1));
    const second = s.client.sync.receiveClassic(classicResponse(2));

    await waitUntil("the classic feed waits for the lock", () => seen.of("sync.waitingForLock").length === 1);
    expect(seen.of("sync.waitingForLock")).toEqual([{ mode: "classic", lockName: name }]);
    expect(await s.client.sync.status()).toMatchObject({ state: "waiting_for_lock", mode: "classic" });
    expect(crypto).not.toHaveBeenCalled();

    other.letGo();
    await Promise.all([first, second]);
    expect(crypto).toHaveBeenCalledTimes(2);
    expect((await s.client.sync.status()).positions.classicSince).toBe("s2");
    expect(locks.isHeld(name)).toBe(true);
    await s.client.sync.stop();
    expect(locks.isHeld(name)).toBe(false);
  });

  it("client.close() while the classic feed waits rejects its responses with client_closed", async () => {
    const s = await setup();
    otherTabHolds(locks, lockNameOf(s));
    const seen = new SyncRecorder(s.client);
    const pending = s.client.sync.receiveClassic(classicResponse(1)).catch((error: unknown) => error);
    await waitUntil("the classic feed waits for the lock", () => seen.of("sync.waitingForLock").length === 1);

    await s.client.close();
    expect(await pending).toMatchObject({ code: "client_closed" });
  });
});

describe("a loop that ends for a reason it did not expect", () => {
  it("is logged with what the error says (name, message), never the error object", async () => {
    const lines: unknown[][] = [];
    const logger: Logger = {
      debug() {},
      info() {},
      warn() {},
      error: (...args: unknown[]) => lines.push(args),
    };
    const s = await setup(logger);
    // As in a sandboxed iframe without `allow-same-origin`: every lock request throws.
    const refused = Object.assign(new Error("The request was denied."), {
      name: "SecurityError",
      data: { access_token: "syt_not_for_logs" },
    });
    vi.stubGlobal("navigator", { locks: { request: () => Promise.reject(refused) } });
    const seen = new SyncRecorder(s.client);

    await s.client.sync.start();
    await waitUntil("the loop stopped", () => seen.of("sync.stopped").length === 1);
    expect(lines).toEqual([
      [
        "the sync loop ended unexpectedly",
        expect.objectContaining({ name: "SecurityError", message: "The request was denied." }),
      ],
    ]);
    expect(JSON.stringify(lines)).not.toContain("syt_not_for_logs");
  });
});
