/**
 * Shares one in-flight run of an async task among concurrent callers. A failure is handed to
 * every waiting caller and then forgotten, so the next call starts afresh (failures are never
 * cached).
 */
export class SingleFlight<T> {
  #inFlight: Promise<T> | undefined;

  run(task: () => Promise<T>): Promise<T> {
    if (this.#inFlight) return this.#inFlight;
    const promise = (async () => {
      try {
        return await task();
      } finally {
        this.#inFlight = undefined;
      }
    })();
    this.#inFlight = promise;
    return promise;
  }

  get inFlight(): boolean {
    return this.#inFlight !== undefined;
  }
}
