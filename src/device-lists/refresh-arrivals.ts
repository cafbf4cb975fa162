/** How a refresh the server accepted ended, as sync and the next key query tell it. */
export type Arrival = { kind: "arrived" } | { kind: "failed"; server: string };

interface Waiting {
  changedSeen: boolean;
  resolve: (arrival: Arrival) => void;
}

/**
 * Waits for the result of an accepted MSC2638 refresh. The MSC has the server fetch the list after
 * answering 202 and relay it through `device_lists.changed`; the crypto layer then queries the
 * user, and only that answer holds the refreshed list. So a refresh has arrived once the user was
 * in `device_lists.changed` and then in an answered `keys/query` that did not name their server
 * in `failures`. A `failures` entry for the server means the server's own fetch failed (where the
 * MSC leaves the error to be relayed).
 */
export class RefreshArrivals {
  readonly #waiting = new Map<string, Waiting>();

  /**
   * Starts waiting for `userId` — before the refresh is asked for, so an announcement that beats
   * the 202 is not missed. `cancel` ends the wait (the promise then never settles).
   */
  expect(userId: string): { arrival: Promise<Arrival>; cancel: () => void } {
    let resolve!: (arrival: Arrival) => void;
    const arrival = new Promise<Arrival>((r) => {
      resolve = r;
    });
    const waiting: Waiting = { changedSeen: false, resolve };
    this.#waiting.set(userId, waiting);
    const cancel = () => {
      if (this.#waiting.get(userId) === waiting) this.#waiting.delete(userId);
    };
    return { arrival, cancel };
  }

  /** Sync announced these users' lists changed. */
  changed(users: readonly string[]): void {
    for (const user of users) {
      const waiting = this.#waiting.get(user);
      if (waiting !== undefined) waiting.changedSeen = true;
    }
  }

  /** A key query for these users was answered; `failedServer` names a user's server if it failed. */
  queried(users: readonly string[], failedServer: (userId: string) => string | undefined): void {
    for (const user of users) {
      const waiting = this.#waiting.get(user);
      if (waiting === undefined) continue;
      const server = failedServer(user);
      if (server !== undefined) this.#settle(user, waiting, { kind: "failed", server });
      else if (waiting.changedSeen) this.#settle(user, waiting, { kind: "arrived" });
    }
  }

  #settle(user: string, waiting: Waiting, arrival: Arrival): void {
    this.#waiting.delete(user);
    waiting.resolve(arrival);
  }
}
