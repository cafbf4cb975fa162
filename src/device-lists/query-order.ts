/**
 * Whether a `keys/query` answer can hold what the server knew after some moment: only a query
 * *sent* after it can. The SDK sees answers, not sends, but the outgoing-request loop sends one
 * request at a time (`OutgoingRequestLoop`): at any moment at most one request is in flight, and
 * it is the next request of the loop to complete. So every completion of the loop is numbered in
 * one sequence (answers and failures, of every request kind), a mark records the number reached
 * and whether the loop was running then, and an answer numbered past the mark — past the first
 * completion after it, if the loop was running — was sent after the mark.
 */
export interface QueryMark {
  /** Completions of the loop so far. */
  seq: number;
  /** Whether a request may have been in flight (the loop was running). */
  inFlight: boolean;
  /** Failed `keys/query` requests so far. */
  failures: number;
}

/** Whether the answer numbered `seq` was to a request sent after `mark`: certainly. */
export function sentAfter(mark: QueryMark, seq: number): boolean {
  return seq > mark.seq + (mark.inFlight ? 1 : 0);
}

/**
 * Whether the answer numbered `seq` counts as newer than `mark`, judged once a loop pass that
 * started after the mark is over. An answer to the request in flight at the mark counts too, if no
 * `keys/query` failed since: crypto-wasm keeps a user invalidated while their query was in flight
 * due for another one (rust-sdk `UsersForKeyQuery::maybe_remove_user`), so that later pass queried
 * them again, and had it answered, its answer — not this one — would be the last.
 */
export function settledAfter(mark: QueryMark, seq: number, failuresNow: number): boolean {
  return seq > mark.seq && (sentAfter(mark, seq) || failuresNow === mark.failures);
}
