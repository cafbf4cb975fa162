import type { WireError } from "./wire-error.js";

/**
 * What the app's thread and the worker say to each other. Calls, their answers and callbacks go
 * through Comlink; an answer is an envelope, so a thrown error crosses whole (`WireError`).
 * Events go as plain `postMessage`s on the same port as Comlink's answers, so they keep their
 * order relative to them: an event emitted before a call resolved is heard before it resolves.
 */

export type Envelope = { ok: true; value: unknown } | { ok: false; error: WireError };

/** A message the worker posts for each client event. Comlink ignores messages without an `id`. */
export interface EventMessage {
  e2eeEvent: [name: string, payload: unknown];
}

export function isEventMessage(data: unknown): data is EventMessage {
  return typeof data === "object" && data !== null && Array.isArray((data as EventMessage).e2eeEvent);
}

/** The module the worker imports before it opens the client, and what it calls there. */
export interface SetupCall {
  url: string;
  exportName: string;
  args: unknown[];
}

/** The app's side, which the worker calls back (a Comlink proxy). */
export interface WorkerHostCallbacks {
  /** Calls the app's callback numbered `id` with `args`. */
  invoke(id: number, args: unknown[]): Promise<Envelope>;
}

/** What the worker exposes. */
export interface WorkerService {
  /**
   * Creates the client inside the worker, with the options `setup`'s export returns there added
   * to `options`; resolves with its user and device ids.
   */
  open(options: unknown, host: WorkerHostCallbacks, setup?: SetupCall): Promise<Envelope>;
  /** Calls `client[path[0]][path[1]](...args)`, or a handle's method (`["#handle", id, name]`). */
  call(path: string[], args: unknown[]): Promise<Envelope>;
  /** Runs `export` of the module at `url` with the in-worker client and `args`. */
  run(url: string, exportName: string, args: unknown[]): Promise<Envelope>;
  /** Aborts the signal the app sent as marker `id`, with `reason` (wire form). */
  abort(id: number, reason: WireError): void;
  /** Forgets the signal marker `id` (its call is over). */
  forget(id: number): void;
}

/** The capabilities and methods a worker client forwards, by capability. */
export const FORWARDED = {
  crossSigning: ["status", "bootstrap", "restoreFromRecoveryKey", "restoreFromPassphrase"],
  secretStorage: [
    "getDefaultKeyId",
    "createKey",
    "checkKey",
    "unlockWithRecoveryKey",
    "unlockWithPassphrase",
    "isStored",
  ],
  dehydration: ["isSupported", "status", "drain", "start", "stop", "replaceNow", "delete"],
  sync: ["start", "stop", "status", "extension", "receiveClassic"],
  rooms: ["updateRoom", "forgetRoom", "encryption", "planRecipients", "send", "decrypt", "devices"],
  deviceLists: ["trust", "trustAll", "report", "requestResync", "ensureFresh"],
} as const;

export type ForwardedCapability = keyof typeof FORWARDED;
