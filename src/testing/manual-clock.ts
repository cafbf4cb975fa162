import type { Clock } from "../time/clock.js";

interface Sleeper {
  wakeAt: number;
  seq: number;
  resolve: () => void;
}

/**
 * A clock that only moves when a test says so. `advance(ms)` wakes every sleeper that is due, in
 * wake-time order, letting promise callbacks run between wake-ups so code that sleeps again inside
 * the advanced window is woken too.
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #sleepers: Sleeper[] = [];

  constructor(startMs = 1_700_000_000_000) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  /** How many sleeps are pending — lets tests wait until the code under test is parked. */
  get pendingSleeps(): number {
    return this.#sleepers.length;
  }

  /** The earliest pending wake-up time, if any. */
  get nextWakeAt(): number | undefined {
    return this.#sleepers.reduce<number | undefined>(
      (m, s) => (m === undefined || s.wakeAt < m ? s.wakeAt : m),
      undefined,
    );
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason ?? new DOMException("The operation was aborted.", "AbortError"));
        return;
      }
      const sleeper: Sleeper = {
        wakeAt: this.#now + Math.max(0, ms),
        seq: this.#seq++,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        reject(signal?.reason ?? new DOMException("The operation was aborted.", "AbortError"));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#sleepers.push(sleeper);
    });
  }

  /** Moves time forward by `ms`, waking sleepers in order. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      await flushMicrotasks();
      const due = this.#sleepers
        .filter((s) => s.wakeAt <= target)
        .sort((a, b) => a.wakeAt - b.wakeAt || a.seq - b.seq)[0];
      if (!due) break;
      this.#sleepers = this.#sleepers.filter((s) => s !== due);
      this.#now = Math.max(this.#now, due.wakeAt);
      due.resolve();
    }
    this.#now = target;
    await flushMicrotasks();
  }

  /** Advances straight to the next pending wake-up (no-op when nothing sleeps). */
  async runNext(): Promise<void> {
    await flushMicrotasks();
    const next = this.nextWakeAt;
    if (next !== undefined) await this.advance(next - this.#now);
  }
}

async function flushMicrotasks(): Promise<void> {
  // Several turns so chained awaits settle; a macrotask boundary lets I/O callbacks in too.
  for (let i = 0; i < 5; i++) await Promise.resolve();
  await new Promise<void>((r) => setTimeout(r, 0));
}
