import * as Comlink from "comlink";
import type { E2eeClient } from "../client.js";
import type { ClientErrorCode, CreateE2eeClientOptions, E2eeClientEvents } from "../client-options.js";
import { SdkError } from "../errors/sdk-error.js";
import { TypedEmitter } from "../events/emitter.js";
import { type Logger, silentLogger } from "../logger.js";
import {
  type Envelope,
  FORWARDED,
  type ForwardedCapability,
  isEventMessage,
  type SetupCall,
  type WorkerHostCallbacks,
  type WorkerService,
} from "./protocol.js";
import { fromWireError, toWireError } from "./wire-error.js";
import {
  CALLBACK,
  type CallbackMarker,
  isHandleMarker,
  markOutgoing,
  rehideKeys,
  SIGNAL,
  type SignalMarker,
} from "./wire-values.js";

/**
 * Each method of `T` returning a promise: what a call across a thread boundary can be. A method
 * that already returns one keeps its own type, overloads included.
 */
export type Promisified<T> = {
  readonly [K in keyof T]: T[K] extends (...args: never[]) => Promise<unknown>
    ? T[K]
    : T[K] extends (...args: infer A) => infer R
      ? (...args: A) => Promise<Awaited<R>>
      : T[K];
};

/**
 * A client whose work runs in a worker: the same capabilities and event stream as `E2eeClient`,
 * every method returning a promise (`deviceLists.trust()` too). What does not cross: the
 * `olmMachine` escape hatch (use `runInWorker`), and options that are not data or callbacks.
 */
export interface E2eeWorkerClient {
  readonly userId: string;
  readonly deviceId: string;
  readonly events: E2eeClient["events"];
  readonly crossSigning: Promisified<E2eeClient["crossSigning"]>;
  readonly secretStorage: Promisified<E2eeClient["secretStorage"]>;
  readonly dehydration: Promisified<E2eeClient["dehydration"]>;
  readonly sync: Promisified<E2eeClient["sync"]>;
  readonly rooms: Promisified<E2eeClient["rooms"]>;
  readonly deviceLists: Promisified<E2eeClient["deviceLists"]>;
  processOutgoingRequests(): Promise<void>;
  /**
   * Runs app code next to the client, inside the worker: imports the module at `moduleUrl` (an
   * absolute URL, e.g. `new URL("./my-crypto.js", import.meta.url)`) and calls its export
   * `exportName` with the in-worker `E2eeClient` — `olmMachine` included — and `args`. Arguments
   * and result cross as data; functions in `args` are called back here.
   */
  runInWorker<R = unknown>(moduleUrl: string | URL, exportName?: string, ...args: unknown[]): Promise<R>;
  /** Closes the client in the worker, then ends the worker. Later calls reject with `client_closed`. */
  close(): Promise<void>;
}

/** Options of a worker client: those of `createE2eeClient` that can cross to the worker. */
export type CreateE2eeWorkerClientOptions = Omit<
  CreateE2eeClientOptions,
  "fetch" | "clock" | "random" | "olmMachine" | "stateStore"
>;

/**
 * App code the worker runs before it opens the client, for what cannot cross as data: the worker
 * imports `module` (an absolute URL, e.g. `new URL("./e2ee-setup.js", import.meta.url)`), calls its
 * export `export` (default `"default"`) with `args`, and adds the options it returns — a `fetch`,
 * a `clock`, a `stateStore`, … made there — to those the app passed.
 */
export interface WorkerSetup {
  module: string | URL;
  export?: string;
  /** Data, callbacks (called back on the app's thread) and signals, as for any call. */
  args?: readonly unknown[];
}

/** What crosses a thread boundary only as data or callbacks: these options cannot. */
const REFUSED = ["fetch", "clock", "random", "olmMachine", "stateStore"] as const;

/** The worker itself, as the platform shells hand it over. */
export interface WorkerLink {
  endpoint: Comlink.Endpoint;
  /** Ends the worker (its thread and memory). */
  terminate: () => Promise<void> | void;
  /** Calls `listener` once if the worker dies (an uncaught error, out of memory). */
  onDeath: (listener: (error: unknown) => void) => void;
}

/**
 * Opens the client in the worker at the other end of `link`. The app's callbacks in `options`
 * (`uiaCallback`, `refreshToken`, `getSecretStorageKey`, the logger) stay here and are called
 * from the worker.
 */
export async function connectWorkerClient(
  link: WorkerLink,
  options: CreateE2eeWorkerClientOptions,
  setup?: WorkerSetup,
): Promise<E2eeWorkerClient> {
  for (const name of REFUSED) {
    if ((options as Record<string, unknown>)[name] !== undefined) {
      await link.terminate();
      throw new SdkError<ClientErrorCode>(
        "invalid_options",
        `${name} cannot be passed to a worker client: it is not data or a callback; make it in the worker with a setup module`,
      );
    }
  }
  const refusal = setup === undefined ? undefined : setupRefusal(setup);
  if (refusal !== undefined) {
    await link.terminate();
    throw new SdkError<ClientErrorCode>("invalid_options", refusal);
  }
  const setupCall =
    setup === undefined
      ? undefined
      : { url: String(setup.module), exportName: setup.export ?? "default", args: [...(setup.args ?? [])] };
  const logger = options.logger ?? silentLogger;
  const connection = new Connection(link, logger);
  const plainLogger: Logger | undefined = options.logger && {
    debug: (m, f) => options.logger?.debug(m, f),
    info: (m, f) => options.logger?.info(m, f),
    warn: (m, f) => options.logger?.warn(m, f),
    error: (m, f) => options.logger?.error(m, f),
  };
  const ids = (await connection.open({ ...options, logger: plainLogger }, setupCall)) as {
    userId: string;
    deviceId: string;
  };
  return connection.client(ids);
}

/** The app's end of one worker: calls, callbacks, signals and events. */
class Connection {
  readonly #link: WorkerLink;
  readonly #remote: Comlink.Remote<WorkerService>;
  readonly #events: TypedEmitter<E2eeClientEvents>;
  readonly #callbacks = new Map<number, (...args: never[]) => unknown>();
  #nextId = 1;
  #closed: Promise<void> | undefined;
  #dead: unknown;
  /** Rejects once the worker dies: no call waits for an answer that cannot come. */
  readonly #death: Promise<never>;

  constructor(link: WorkerLink, logger: Logger) {
    this.#link = link;
    this.#remote = Comlink.wrap<WorkerService>(link.endpoint);
    this.#events = new TypedEmitter<E2eeClientEvents>(logger);
    link.endpoint.addEventListener("message", (event) => {
      const data = (event as MessageEvent).data;
      if (isEventMessage(data)) {
        const [name, payload] = data.e2eeEvent;
        this.#events.emit(name as keyof E2eeClientEvents, payload as never);
      }
    });
    this.#death = new Promise<never>((_, reject) => {
      link.onDeath((error) => {
        this.#dead = error;
        logger.error("the crypto worker died", { error: String(error) });
        reject(workerFailed(error));
      });
    });
    this.#death.catch(() => undefined);
  }

  /** `call`'s answer, or the worker's death. */
  #answer(call: Promise<Envelope>): Promise<Envelope> {
    return Promise.race([call, this.#death]);
  }

  async open(options: unknown, setup: SetupCall | undefined): Promise<unknown> {
    const host: WorkerHostCallbacks = {
      invoke: async (id, args) => {
        const fn = this.#callbacks.get(id);
        if (fn === undefined) return { ok: false, error: toWireError(new Error("unknown callback")) };
        try {
          return { ok: true, value: await (fn as (...a: unknown[]) => unknown)(...args) };
        } catch (error) {
          return { ok: false, error: toWireError(error) };
        }
      },
    };
    const { value: marked, signals } = this.#mark({ options, setupArgs: setup?.args ?? [] }, true);
    const { options: markedOptions, setupArgs } = marked as { options: unknown; setupArgs: unknown[] };
    const markedSetup = setup === undefined ? undefined : { ...setup, args: setupArgs };
    try {
      return this.#unwrap(
        await this.#answer(this.#remote.open(markedOptions, Comlink.proxy(host), markedSetup)),
      );
    } catch (error) {
      await this.#link.terminate();
      throw error;
    } finally {
      signals();
    }
  }

  client(ids: { userId: string; deviceId: string }): E2eeWorkerClient {
    const capabilities = Object.fromEntries(
      (Object.keys(FORWARDED) as ForwardedCapability[]).map((capability) => [
        capability,
        Object.freeze(
          Object.fromEntries(
            FORWARDED[capability].map((method) => [
              method,
              (...args: unknown[]) => this.#call([capability, method], args),
            ]),
          ),
        ),
      ]),
    );
    const client = {
      userId: ids.userId,
      deviceId: ids.deviceId,
      events: this.#events,
      ...capabilities,
      processOutgoingRequests: () => this.#call(["#client", "processOutgoingRequests"], []),
      runInWorker: (moduleUrl: string | URL, exportName = "default", ...args: unknown[]) =>
        this.#run(String(moduleUrl), exportName, args),
      close: () => this.#close(),
    };
    return Object.freeze(client) as unknown as E2eeWorkerClient;
  }

  async #call(path: string[], args: unknown[]): Promise<never> {
    this.#assertUsable();
    const { value, signals } = this.#mark(args);
    try {
      return this.#unwrap(await this.#answer(this.#remote.call(path, value as unknown[]))) as never;
    } finally {
      signals();
    }
  }

  async #run(url: string, exportName: string, args: unknown[]): Promise<never> {
    this.#assertUsable();
    const { value, signals } = this.#mark(args);
    try {
      return this.#unwrap(await this.#answer(this.#remote.run(url, exportName, value as unknown[]))) as never;
    } finally {
      signals();
    }
  }

  #close(): Promise<void> {
    this.#closed ??= (async () => {
      try {
        if (this.#dead === undefined)
          this.#unwrap(await this.#answer(this.#remote.call(["#client", "close"], [])));
      } finally {
        this.#remote[Comlink.releaseProxy]();
        await this.#link.terminate();
      }
    })();
    return this.#closed;
  }

  #assertUsable(): void {
    if (this.#closed !== undefined) {
      throw new SdkError<ClientErrorCode>("client_closed", "the client is closed");
    }
    if (this.#dead !== undefined) throw workerFailed(this.#dead);
  }

  /**
   * The value with callbacks and signals marked; `signals()` ends the call's part: its aborts are
   * no longer forwarded and its callbacks forgotten (those of `open`, `persistent`, stay).
   */
  #mark(value: unknown, persistent = false): { value: unknown; signals: () => void } {
    const cleanups: (() => void)[] = [];
    const marked = markOutgoing(
      value,
      (fn) => {
        const id = this.#nextId++;
        this.#callbacks.set(id, fn);
        if (!persistent) cleanups.push(() => this.#callbacks.delete(id));
        return { [CALLBACK]: id } satisfies CallbackMarker;
      },
      (signal) => {
        const id = this.#nextId++;
        if (signal.aborted)
          return { [SIGNAL]: id, aborted: toWireError(signal.reason) } satisfies SignalMarker;
        const onAbort = () => void this.#remote.abort(id, toWireError(signal.reason));
        signal.addEventListener("abort", onAbort, { once: true });
        cleanups.push(() => {
          signal.removeEventListener("abort", onAbort);
          void this.#remote.forget(id).catch(() => undefined);
        });
        return { [SIGNAL]: id } satisfies SignalMarker;
      },
    );
    return {
      value: marked,
      signals: () => {
        for (const cleanup of cleanups) cleanup();
      },
    };
  }

  #unwrap(envelope: Envelope): unknown {
    if (!envelope.ok) throw fromWireError(envelope.error);
    const value = envelope.value;
    if (isHandleMarker(value)) {
      const id = value.__e2eeHandle;
      return Object.freeze(
        Object.fromEntries(
          value.methods.map((method) => [
            method,
            (...args: unknown[]) => this.#call(["#handle", String(id), method], args),
          ]),
        ),
      );
    }
    return rehideKeys(value);
  }
}

function setupRefusal(setup: WorkerSetup): string | undefined {
  if (typeof setup !== "object" || setup === null) return "setup must be an object";
  if (typeof setup.module !== "string" && !(setup.module instanceof URL))
    return "setup.module must be a URL or a string";
  if (setup.export !== undefined && typeof setup.export !== "string") return "setup.export must be a string";
  if (setup.args !== undefined && !Array.isArray(setup.args)) return "setup.args must be an array";
  return undefined;
}

function workerFailed(cause: unknown): SdkError<ClientErrorCode> {
  return new SdkError<ClientErrorCode>("worker_failed", "the crypto worker died", { cause });
}
