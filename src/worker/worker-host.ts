import * as Comlink from "comlink";
import { createE2eeClient, type E2eeClient } from "../client.js";
import type { ClientErrorCode, CreateE2eeClientOptions } from "../client-options.js";
import { SdkError } from "../errors/sdk-error.js";
import {
  type Envelope,
  type EventMessage,
  FORWARDED,
  type ForwardedCapability,
  type SetupCall,
  type WorkerHostCallbacks,
  type WorkerService,
} from "./protocol.js";
import { fromWireError, toWireError, type WireError } from "./wire-error.js";
import { markResult, restoreIncoming, type SignalMarker } from "./wire-values.js";

/**
 * How long one crypto call may take in a worker, in ms, unless the app says otherwise. No UI waits
 * on this thread, so the drain hands crypto-wasm hundreds of events a call (≈ 1.4 ms each, plus a
 * fixed ≈ 8 ms per call: 2 % of a 400 ms call) and the app's thread only receives messages.
 */
export const WORKER_SLICE_BUDGET_MS = 400;

/** The port the worker talks on, and how it posts the event messages. */
export interface HostEndpoint extends Comlink.Endpoint {}

/**
 * The inside of a worker client: creates the client in this thread when the app opens it, and
 * serves the app's calls on `endpoint`. Callbacks the app gave are called back on its thread;
 * signals it gave abort here when it aborts them there.
 */
export function serveClient(endpoint: HostEndpoint): void {
  let client: E2eeClient | undefined;
  let host: Comlink.Remote<WorkerHostCallbacks> | undefined;
  let storeLock: (() => void) | undefined;
  const signals = new Map<number, AbortController>();
  const handles = new Map<number, Record<string, (...args: unknown[]) => unknown>>();
  let nextHandle = 1;

  const restore = (value: unknown) =>
    restoreIncoming(
      value,
      (id) =>
        async (...args: unknown[]) => {
          if (host === undefined) throw new Error("the app's callbacks are gone");
          const answer = await host.invoke(id, args);
          if (!answer.ok) throw fromWireError(answer.error);
          return answer.value;
        },
      (marker: SignalMarker) => {
        const controller = new AbortController();
        if (marker.aborted !== undefined) controller.abort(fromWireError(marker.aborted as WireError));
        else signals.set(marker.__e2eeSignal, controller);
        return controller.signal;
      },
    );

  const answer = async (work: () => Promise<unknown>): Promise<Envelope> => {
    try {
      const value = await work();
      return {
        ok: true,
        value: markResult(value, (object, methods) => {
          const id = nextHandle++;
          handles.set(id, Object.fromEntries(methods.map((m) => [m, (object as never)[m]])));
          return id;
        }),
      };
    } catch (error) {
      return { ok: false, error: toWireError(error) };
    }
  };

  const service: WorkerService = {
    open: (options, callbacks, setup) =>
      answer(async () => {
        if (client !== undefined) throw closedOrOpen("the worker already holds a client");
        host = callbacks as unknown as Comlink.Remote<WorkerHostCallbacks>;
        const crossed = restore(options) as CreateE2eeClientOptions;
        const restored: CreateE2eeClientOptions =
          setup === undefined ? crossed : { ...crossed, ...(await setupOptions(setup, restore)) };
        const withBudget: CreateE2eeClientOptions = {
          ...restored,
          dehydration: {
            ...restored.dehydration,
            drain: { sliceBudgetMs: WORKER_SLICE_BUDGET_MS, ...restored.dehydration?.drain },
          },
        };
        if (restored.cryptoStore !== undefined) storeLock = await lockStore(restored.cryptoStore.name);
        try {
          client = await createE2eeClient(withBudget);
        } catch (error) {
          storeLock?.();
          storeLock = undefined;
          throw error;
        }
        client.events.onAny((name, payload) => {
          const message: EventMessage = { e2eeEvent: [name, payload] };
          try {
            endpoint.postMessage(message);
          } catch {
            // A payload that cannot be cloned is dropped rather than breaking the emitter.
          }
        });
        return { userId: client.userId, deviceId: client.deviceId };
      }),

    call: (path, args) =>
      answer(async () => {
        const target = client;
        if (target === undefined) throw closedOrOpen("the worker holds no client yet");
        const restored = restore(args) as unknown[];
        if (path[0] === "#handle") {
          const method = handles.get(Number(path[1]))?.[path[2] ?? ""];
          if (method === undefined) throw new TypeError("no such handle");
          return await method(...restored);
        }
        if (path[0] === "#client") {
          if (path[1] === "processOutgoingRequests") return await target.processOutgoingRequests();
          if (path[1] === "close") {
            try {
              return await target.close();
            } finally {
              storeLock?.();
              storeLock = undefined;
            }
          }
          throw new TypeError(`no such client method: ${path[1]}`);
        }
        const [capability, method] = path as [ForwardedCapability, string];
        const methods: readonly string[] | undefined = FORWARDED[capability];
        if (methods === undefined || !methods.includes(method)) {
          throw new TypeError(`no such method: ${path.join(".")}`);
        }
        const object = target[capability] as unknown as Record<string, (...a: unknown[]) => unknown>;
        return await object[method]?.(...restored);
      }),

    run: (url, exportName, args) =>
      answer(async () => {
        if (client === undefined) throw closedOrOpen("the worker holds no client yet");
        const module = (await import(/* @vite-ignore */ url)) as Record<string, unknown>;
        const fn = module[exportName];
        if (typeof fn !== "function") throw new TypeError(`${url} exports no function ${exportName}`);
        return await fn(client, ...(restore(args) as unknown[]));
      }),

    abort(id, reason) {
      const controller = signals.get(id);
      signals.delete(id);
      controller?.abort(fromWireError(reason));
    },

    forget(id) {
      signals.delete(id);
    },
  };
  Comlink.expose(service, endpoint);
}

/**
 * The options the app's setup module makes inside the worker: what cannot cross as data (a
 * `fetch`, a `clock`, a `stateStore`, …) is built here instead.
 */
async function setupOptions(
  setup: SetupCall,
  restore: (value: unknown) => unknown,
): Promise<Partial<CreateE2eeClientOptions>> {
  let module: Record<string, unknown>;
  try {
    module = (await import(/* @vite-ignore */ setup.url)) as Record<string, unknown>;
  } catch (cause) {
    throw new SdkError<ClientErrorCode>("invalid_options", "the worker could not import the setup module", {
      cause,
      details: { module: setup.url },
    });
  }
  const fn = module[setup.exportName];
  if (typeof fn !== "function") {
    throw new SdkError<ClientErrorCode>("invalid_options", "the setup module exports no such function", {
      details: { module: setup.url, export: setup.exportName },
    });
  }
  const made: unknown = await fn(...(restore(setup.args) as unknown[]));
  if (typeof made !== "object" || made === null || Array.isArray(made)) {
    throw new SdkError<ClientErrorCode>(
      "invalid_options",
      "the setup function must return an options object",
      {
        details: { module: setup.url, export: setup.exportName },
      },
    );
  }
  return made as Partial<CreateE2eeClientOptions>;
}

function closedOrOpen(message: string): SdkError<ClientErrorCode> {
  return new SdkError<ClientErrorCode>("invalid_options", message);
}

/**
 * One worker owns a crypto store: a Web Lock named after it is held while its client is open, and
 * a second worker (another tab, another window) asking for the same store gets
 * `crypto_store_in_use` rather than a second machine writing the same database. Where there are no
 * Web Locks (Node, where the store cannot be shared between threads anyway) nothing is locked.
 */
async function lockStore(name: string): Promise<(() => void) | undefined> {
  const locks = (globalThis.navigator as { locks?: LockManager } | undefined)?.locks;
  if (locks === undefined) return undefined;
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const granted = await new Promise<boolean>((resolve) => {
    void locks
      .request(`matrix-e2ee-devices:crypto-store:${name}`, { ifAvailable: true }, async (lock) => {
        resolve(lock !== null);
        if (lock !== null) await held;
      })
      .catch(() => resolve(false));
  });
  if (!granted) {
    throw new SdkError<ClientErrorCode>(
      "crypto_store_in_use",
      "another worker (another tab or window) already holds this crypto store",
      { details: { store: name } },
    );
  }
  return release;
}
