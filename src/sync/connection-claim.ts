import { SdkError } from "../errors/sdk-error.js";

/**
 * Codes of the plain `SdkError`s the sync capability throws: `sync_already_running` (this
 * device's e2ee and to-device data already flow through another loop or extension in this
 * JavaScript context), `sync_stopped` (a call on a released extension; also the abort reason of
 * `stop()`) and `invalid_options`.
 */
export type SyncErrorCode = "sync_already_running" | "sync_stopped" | "invalid_options";

/**
 * The server acknowledges to-device messages per device, not per connection (Synapse deletes up to
 * `since` for the user and device), so two connections carrying `to_device` for one device delete
 * each other's messages. MSC3885: enable it on at most one connection. Within one JavaScript
 * context this registry refuses a second claim; across tabs and windows Web Locks do (below).
 */
const claimed = new Set<string>();

/** Claims the device's e2ee connection in this context; returns the release. */
export function claimConnection(key: string): () => void {
  if (claimed.has(key)) {
    throw new SdkError<SyncErrorCode>(
      "sync_already_running",
      "this device's encryption sync already runs (one connection per device carries e2ee and to_device)",
      { details: { mode: "in-process" } },
    );
  }
  claimed.add(key);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    claimed.delete(key);
  };
}

interface LockManagerLike {
  request(
    name: string,
    options: { signal?: AbortSignal; ifAvailable?: boolean },
    callback: (lock: unknown) => Promise<void>,
  ): Promise<void>;
}

/** The Web Locks API where the environment has it (browsers, Electron renderers); else `undefined`. */
export function webLocks(): LockManagerLike | undefined {
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  return typeof nav?.locks?.request === "function" ? nav.locks : undefined;
}

/**
 * Runs `body` while holding the named lock across every tab and window of the origin. A context
 * that finds it held waits (`onWaiting` is told) until the holder releases it — by stopping, or
 * by closing — and then takes over. Without Web Locks (Node) it runs at once: there the
 * in-process registry is the only guard. Resolves when `body` does; rejects if `signal` aborts
 * while waiting.
 */
export async function whileHoldingLock(
  name: string,
  signal: AbortSignal,
  onWaiting: () => void,
  body: () => Promise<void>,
  locks: LockManagerLike | undefined = webLocks(),
): Promise<void> {
  if (locks === undefined) return body();
  let ran = false;
  // First without queueing: a free lock runs at once; a held one is reported, then waited for.
  await locks.request(name, { ifAvailable: true }, async (lock) => {
    if (lock === null) return;
    ran = true;
    await body();
  });
  if (ran) return;
  onWaiting();
  await locks.request(name, { signal }, async () => {
    await body();
  });
}

/**
 * Takes the named lock as `whileHoldingLock` does — at once when free; else `onWaiting` is told
 * and the lock waited for — but holds it past the call, until the returned release: for claims
 * that live across calls (the app's extension and its classic feed). The release resolves once
 * the lock is free for the next holder. Rejects with `signal`'s reason if it aborts while waiting.
 * Without Web Locks (Node) it resolves at once.
 */
export async function holdLock(
  name: string,
  signal: AbortSignal,
  onWaiting: () => void,
  locks: LockManagerLike | undefined = webLocks(),
): Promise<() => Promise<void>> {
  signal.throwIfAborted();
  if (locks === undefined) return async () => {};
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let granted!: () => void;
  const held = new Promise<void>((resolve) => {
    granted = resolve;
  });
  const holding = whileHoldingLock(
    name,
    signal,
    onWaiting,
    async () => {
      granted();
      await released;
    },
    locks,
  );
  // Settles first with the grant, or with the abort while waiting (the only way `holding` rejects
  // before the grant); after the grant, `holding` resolves once `release` is called.
  const gone = holding.catch(() => {});
  await Promise.race([held, holding]);
  return () => {
    release();
    return gone;
  };
}
