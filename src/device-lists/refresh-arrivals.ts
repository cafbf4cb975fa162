import { type QueryMark, sentAfter, settledAfter } from "./query-order.js";

/**
 * How a refresh the server accepted ended, as sync and the next key query tell it; `seq` numbers
 * the answer that told it (see `query-order.ts`).
 */
export type Arrival = { kind: "arrived"; seq: number } | { kind: "failed"; server: string; seq: number };

interface Waiting {
  /** Taken at the 202. */
  accepted: QueryMark;
  /** Taken when sync first announced the user's list changed after the 202. */
  changed: QueryMark | undefined;
  /** An answer that may be to the query in flight at `changed`: it counts only once `drained` says so. */
  pending: Arrival | undefined;
  resolve: (arrival: Arrival) => void;
}

/**
 * Waits for the result of an accepted MSC2638 refresh. The MSC has the server fetch the list after
 * answering 202 and relay it through `device_lists.changed`; the crypto layer then queries the
 * user, and only that answer holds the refreshed list. So a refresh has arrived once the user was
 * in a `device_lists.changed` seen after the 202, and then in the answer to a `keys/query` sent
 * after that announcement: a change announced before the 202 is some other change, and a query
 * already in flight when the announcement came was answered from what the server had before.
 * A `failures` entry for the user's server in a query sent after the 202 means the server's own
 * fetch failed (where the MSC leaves the error to be relayed).
 */
export class RefreshArrivals {
  readonly #waiting = new Map<string, Waiting>();

  /**
   * Starts waiting for `userId`, once the server accepted the refresh (`accepted` is the mark
   * taken then). `cancel` ends the wait (the promise then never settles).
   */
  expect(userId: string, accepted: QueryMark): { arrival: Promise<Arrival>; cancel: () => void } {
    let resolve!: (arrival: Arrival) => void;
    const arrival = new Promise<Arrival>((r) => {
      resolve = r;
    });
    const waiting: Waiting = { accepted, changed: undefined, pending: undefined, resolve };
    this.#waiting.set(userId, waiting);
    const cancel = () => {
      if (this.#waiting.get(userId) === waiting) this.#waiting.delete(userId);
    };
    return { arrival, cancel };
  }

  /**
   * Sync announced these users' lists changed (`mark` is taken now). Returns the waiting users
   * whose mark found a request in flight: the caller asks the loop for a pass and, once it is
   * over, calls `drained` for them.
   */
  changed(users: readonly string[], mark: QueryMark): string[] {
    const suspect: string[] = [];
    for (const user of users) {
      const waiting = this.#waiting.get(user);
      if (waiting === undefined || waiting.changed !== undefined) continue;
      waiting.changed = mark;
      if (mark.inFlight) suspect.push(user);
    }
    return suspect;
  }

  /**
   * A key query for these users was answered, numbered `seq`; `failedServer` names a user's
   * server if the answer listed it in `failures`.
   */
  queried(users: readonly string[], seq: number, failedServer: (userId: string) => string | undefined): void {
    for (const user of users) {
      const waiting = this.#waiting.get(user);
      if (waiting === undefined || !sentAfter(waiting.accepted, seq)) continue;
      const server = failedServer(user);
      const outcome: Arrival =
        server === undefined ? { kind: "arrived", seq } : { kind: "failed", server, seq };
      if (waiting.changed === undefined) {
        // Before the announcement a success is the server's old copy; a failure is its fetch failing.
        if (server !== undefined) this.#settle(user, waiting, outcome);
      } else if (sentAfter(waiting.changed, seq)) {
        this.#settle(user, waiting, outcome);
      } else {
        waiting.pending = outcome;
      }
    }
  }

  /**
   * A loop pass that started after these users' announcement is over; `failures` is the count of
   * failed key queries now. An answer kept as `pending` is the refreshed list if no key query
   * failed meanwhile (`settledAfter`); otherwise the wait goes on for the next answer.
   */
  drained(users: readonly string[], failures: number): void {
    for (const user of users) {
      const waiting = this.#waiting.get(user);
      const { changed, pending } = waiting ?? {};
      if (waiting === undefined || changed === undefined || pending === undefined) continue;
      if (settledAfter(changed, pending.seq, failures)) this.#settle(user, waiting, pending);
    }
  }

  #settle(user: string, waiting: Waiting, arrival: Arrival): void {
    this.#waiting.delete(user);
    waiting.resolve(arrival);
  }
}
