/**
 * Re-queries in as few calls as possible: users asked for while no call runs go out at once;
 * users asked for while one runs wait for it and then go out together in the next. The crypto
 * layer then splits each call into `keys/query` requests of 250 users (rust-sdk
 * `identities/manager.rs` `MAX_KEY_QUERY_USERS`), so N users cost about ⌈N/250⌉ queries, not N.
 */
export class RequeryBatcher<Outcome> {
  readonly #run: (users: string[]) => Promise<Map<string, Outcome>>;
  #running: Promise<unknown> | undefined;
  #next: { users: Set<string>; result: Promise<Map<string, Outcome>> } | undefined;

  /** `run` re-queries one batch and says how it went for each user; it must not reject. */
  constructor(run: (users: string[]) => Promise<Map<string, Outcome>>) {
    this.#run = run;
  }

  /** Resolves with the outcomes of the batch `users` went out in (it may hold others too). */
  requery(users: readonly string[]): Promise<Map<string, Outcome>> {
    if (this.#running === undefined) return this.#start(new Set(users));
    if (this.#next === undefined) {
      const next = {
        users: new Set<string>(),
        result: undefined as unknown as Promise<Map<string, Outcome>>,
      };
      next.result = this.#running.then(() => {
        if (this.#next === next) this.#next = undefined;
        return this.#start(next.users);
      });
      this.#next = next;
    }
    for (const user of users) this.#next.users.add(user);
    return this.#next.result;
  }

  #start(users: Set<string>): Promise<Map<string, Outcome>> {
    const result = this.#run([...users]);
    const running = result.then(
      () => undefined,
      () => undefined,
    );
    this.#running = running;
    void running.then(() => {
      if (this.#running === running) this.#running = undefined;
    });
    return result;
  }
}
