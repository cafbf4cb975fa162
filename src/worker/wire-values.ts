import { withHiddenKey } from "../secret-storage/key-holder.js";

/**
 * What crosses the thread boundary besides plain data, each as a marker object: an app's callback
 * (called back on the app's thread), an `AbortSignal` (aborted over the wire), and an object with
 * methods a call returned (a handle the app calls through). Everything else travels by structured
 * clone. Pure: the shells on either side (`worker-host.ts`, `remote-client.ts`) say what a marker
 * turns into.
 */

export const CALLBACK = "__e2eeCallback";
export const SIGNAL = "__e2eeSignal";
export const HANDLE = "__e2eeHandle";

export interface CallbackMarker {
  [CALLBACK]: number;
}
export interface SignalMarker {
  [SIGNAL]: number;
  /** Set when the signal had already fired: its reason, in wire form. */
  aborted?: unknown;
}
export interface HandleMarker {
  [HANDLE]: number;
  methods: string[];
}

const MAX_DEPTH = 6;

/**
 * Copies `value` for sending, replacing each function with `onFunction(fn)` and each
 * `AbortSignal` with `onSignal(signal)`; plain objects and arrays are walked (to a depth), other
 * values left for structured clone. The caller's objects are not changed.
 */
export function markOutgoing(
  value: unknown,
  onFunction: (fn: (...args: never[]) => unknown) => CallbackMarker,
  onSignal: (signal: AbortSignal) => SignalMarker,
  depth = 0,
): unknown {
  if (typeof value === "function") return onFunction(value as (...args: never[]) => unknown);
  if (typeof AbortSignal !== "undefined" && value instanceof AbortSignal) return onSignal(value);
  if (value === null || typeof value !== "object" || depth >= MAX_DEPTH) return value;
  if (Array.isArray(value)) return value.map((item) => markOutgoing(item, onFunction, onSignal, depth + 1));
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value))
    out[key] = markOutgoing(item, onFunction, onSignal, depth + 1);
  return out;
}

/** The inverse of `markOutgoing` on the receiving side: markers become what the callbacks make. */
export function restoreIncoming(
  value: unknown,
  onCallback: (id: number) => (...args: unknown[]) => Promise<unknown>,
  onSignal: (marker: SignalMarker) => AbortSignal,
  depth = 0,
): unknown {
  if (value === null || typeof value !== "object" || depth >= MAX_DEPTH) return value;
  if (Array.isArray(value))
    return value.map((item) => restoreIncoming(item, onCallback, onSignal, depth + 1));
  if (!isPlainObject(value)) return value;
  const record = value as Record<string, unknown>;
  if (typeof record[CALLBACK] === "number") return onCallback(record[CALLBACK]);
  if (typeof record[SIGNAL] === "number") return onSignal(record as unknown as SignalMarker);
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(record))
    out[key] = restoreIncoming(item, onCallback, onSignal, depth + 1);
  return out;
}

/**
 * A result as it is sent back: an object whose own enumerable fields include functions (the sync
 * extension) becomes a handle; everything else is sent as it is.
 */
export function markResult(value: unknown, register: (object: object, methods: string[]) => number): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const methods = Object.entries(value)
    .filter(([, item]) => typeof item === "function")
    .map(([key]) => key);
  if (methods.length === 0) return value;
  return { [HANDLE]: register(value, methods), methods } satisfies HandleMarker;
}

export function isHandleMarker(value: unknown): value is HandleMarker {
  return (
    typeof value === "object" &&
    value !== null &&
    isPlainObject(value) &&
    typeof (value as Record<string, unknown>)[HANDLE] === "number"
  );
}

/**
 * A secret-storage key loses its non-printing helpers in a structured clone (they are not
 * enumerable): every `{ keyId, key: Uint8Array }` in a result gets them back, so a key that
 * crossed from the worker prints only its id, as it does on the thread that made it.
 */
export function rehideKeys(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== "object" || depth >= MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    for (const item of value) rehideKeys(item, depth + 1);
    return value;
  }
  if (!isPlainObject(value)) return value;
  const record = value as Record<string, unknown>;
  for (const item of Object.values(record)) rehideKeys(item, depth + 1);
  if (typeof record.keyId === "string" && record.key instanceof Uint8Array) {
    withHiddenKey(
      record as { keyId: string },
      "recoveryKey" in record ? "CreatedSecretStorageKey" : "SecretStorageKey",
    );
  }
  return value;
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
