import { errorSummary } from "../errors/error-summary.js";
import { type Logger, silentLogger } from "../logger.js";

type Listener<T> = (payload: T) => void;
type AnyListener<Events> = <K extends keyof Events>(event: K, payload: Events[K]) => void;

/** The listening half of an emitter: what an app gets, so only the SDK emits. */
export interface EventSubscriber<Events extends { [K in keyof Events]: unknown }> {
  on<K extends keyof Events>(event: K, listener: (payload: Events[K]) => void): () => void;
  once<K extends keyof Events>(event: K, listener: (payload: Events[K]) => void): () => void;
  off<K extends keyof Events>(event: K, listener: (payload: Events[K]) => void): void;
  /** Hears every event with its name (logging, forwarding); returns the unsubscribe. */
  onAny(listener: <K extends keyof Events>(event: K, payload: Events[K]) => void): () => void;
}

/**
 * A small typed event emitter. A listener that throws is logged and isolated: one bad listener
 * never breaks the SDK's own work or the other listeners (background failures are events, never
 * unhandled rejections). Only a summary of its error is logged: the listener is app code, and
 * what it threw may carry a server body or other data that has no place in logs.
 */
export class TypedEmitter<Events extends { [K in keyof Events]: unknown }>
  implements EventSubscriber<Events>
{
  #listeners = new Map<keyof Events, Set<Listener<never>>>();
  #anyListeners = new Set<AnyListener<Events>>();
  #logger: Logger;

  constructor(logger: Logger = silentLogger) {
    this.#logger = logger;
  }

  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as Listener<never>);
    return () => this.off(event, listener);
  }

  once<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(event, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this.#listeners.get(event)?.delete(listener as Listener<never>);
  }

  /** Hears every event, with its name: how one module's events are forwarded into another stream. */
  onAny(listener: AnyListener<Events>): () => void {
    this.#anyListeners.add(listener);
    return () => {
      this.#anyListeners.delete(listener);
    };
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    for (const listener of [...this.#anyListeners]) this.#call(event, () => listener(event, payload));
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) this.#call(event, () => (listener as Listener<Events[K]>)(payload));
  }

  #call(event: keyof Events, run: () => void): void {
    try {
      run();
    } catch (err) {
      this.#logger.error(`listener for "${String(event)}" threw`, errorSummary(err));
    }
  }

  listenerCount(event: keyof Events): number {
    return this.#listeners.get(event)?.size ?? 0;
  }
}
