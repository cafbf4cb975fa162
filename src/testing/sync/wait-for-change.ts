import type { ServerState } from "../state/server-state.js";

/**
 * The long-poll of `/sync` and sliding sync: park until something the caller may be told about
 * happens, the timeout passes, or the client goes away.
 *
 * A wake-up is a hint, not a promise of news: the caller recomputes its response and waits again
 * (with the time left) if it is still empty. The filters below only keep obviously unrelated writes
 * (other users' inboxes, rooms the user is not in) from waking it. The timeout runs on the mock's
 * `Clock`, so tests with a `ManualClock` drive it without real waiting.
 *
 * Subscription happens synchronously inside the call, so a caller that computed an empty response
 * and calls this in the same tick cannot miss a change made in between.
 */

export type WaitOutcome = "changed" | "timeout" | "aborted";

/** Which stores may wake the waiter; all default to true. */
export interface WatchedStores {
  /** To-device messages for this device. */
  toDevice?: boolean;
  /** Device-list changes the user may see, and this device's one-time/fallback key counts. */
  keys?: boolean;
  /** Events in rooms the user is joined or invited to, and the user's own membership anywhere. */
  rooms?: boolean;
  /** The user's global account data. */
  accountData?: boolean;
}

export interface WaitForChangeOptions {
  userId: string;
  deviceId: string;
  timeoutMs: number;
  /** The request's signal: aborting ends the wait with `"aborted"`. */
  signal: AbortSignal;
  watch?: WatchedStores;
}

export function waitForChange(state: ServerState, options: WaitForChangeOptions): Promise<WaitOutcome> {
  const { userId, deviceId, signal } = options;
  const watch = { toDevice: true, keys: true, rooms: true, accountData: true, ...options.watch };
  if (signal.aborted) return Promise.resolve("aborted");
  if (options.timeoutMs <= 0) return Promise.resolve("timeout");

  return new Promise<WaitOutcome>((resolve) => {
    const timer = new AbortController();
    const unsubscribe: (() => void)[] = [];
    let done = false;
    const finish = (outcome: WaitOutcome) => {
      if (done) return;
      done = true;
      for (const off of unsubscribe) off();
      signal.removeEventListener("abort", onAbort);
      timer.abort();
      resolve(outcome);
    };
    const onAbort = () => finish("aborted");
    signal.addEventListener("abort", onAbort, { once: true });

    if (watch.toDevice) {
      unsubscribe.push(
        state.toDevice.onChange((a) => {
          if (a.userId === userId && a.deviceId === deviceId) finish("changed");
        }),
      );
    }
    if (watch.keys) {
      unsubscribe.push(
        state.keys.onChange((c) => {
          if (c.kind === "key-counts") {
            if (c.userId === userId && c.deviceId === deviceId) finish("changed");
          } else if (state.keys.visibleTo(c, userId) && state.rooms.sees(userId, c.userId)) {
            finish("changed");
          }
        }),
      );
    }
    if (watch.rooms) {
      unsubscribe.push(
        state.rooms.onChange(({ roomId, event }) => {
          const membership = state.rooms.membership(roomId, userId);
          if (membership === "join" || membership === "invite" || event.stateKey === userId) {
            finish("changed");
          }
        }),
      );
    }
    if (watch.accountData) {
      unsubscribe.push(
        state.accountData.onChange((c) => {
          if (c.userId === userId) finish("changed");
        }),
      );
    }

    state.clock.sleep(options.timeoutMs, timer.signal).then(
      () => finish("timeout"),
      () => {
        // Cancelled because the wait already ended.
      },
    );
  });
}
