import { DehydrationError } from "../dehydration/device/errors.js";
import { DrainError } from "../dehydration/drain/errors.js";
import { AbortError } from "../errors/abort-error.js";
import { MalformedResponseError } from "../errors/malformed-response-error.js";
import { MatrixApiError } from "../errors/matrix-api-error.js";
import { NetworkError } from "../errors/network-error.js";
import { SdkError } from "../errors/sdk-error.js";
import { TimeoutError } from "../errors/timeout-error.js";
import { UserInteractiveAuthError } from "../errors/user-interactive-auth-error.js";
import { RoomError } from "../rooms/room-errors.js";
import { SecretStorageError } from "../secret-storage/errors.js";
import { StateStoreError } from "../state/state-store.js";

/**
 * A thrown value as it crosses a thread boundary. `postMessage` keeps only an `Error`'s message
 * and name (and drops a subclass's `code`, `details`, `status` …), so an error is sent as its
 * own enumerable fields plus name, message and stack, and rebuilt as an instance of the same
 * class on the other side: `isDrainError`, `instanceof SdkError` and `error.code` keep working.
 */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  /** The error's own fields (`code`, `details`, `status`, `errcode`, …), as plain data. */
  fields: Record<string, unknown>;
  cause?: WireError;
  /** Not an `Error` at all (a string or number was thrown). */
  value?: string | number | boolean | null;
}

const CLASSES: Readonly<Record<string, new (...args: never[]) => Error>> = {
  SdkError,
  AbortError,
  DehydrationError,
  DrainError,
  MalformedResponseError,
  MatrixApiError,
  NetworkError,
  RoomError,
  SecretStorageError,
  StateStoreError,
  TimeoutError,
  UserInteractiveAuthError,
  TypeError,
  RangeError,
};

const MAX_DEPTH = 4;

/** The wire form of whatever was thrown. */
export function toWireError(thrown: unknown, depth = 0): WireError {
  if (thrown === null || typeof thrown !== "object") {
    const value =
      thrown === null || ["string", "number", "boolean"].includes(typeof thrown)
        ? (thrown as string | number | boolean | null)
        : String(thrown);
    return { name: "Error", message: String(thrown), fields: {}, value };
  }
  if (!(thrown instanceof Error)) return objectWireError(thrown);
  const fields: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(thrown)) {
    if (key === "name" || key === "message" || key === "stack" || key === "cause") continue;
    const copy = plainCopy(item, 0);
    if (copy !== undefined) fields[key] = copy;
  }
  const wire: WireError = { name: thrown.name, message: thrown.message, fields };
  if (typeof thrown.stack === "string") wire.stack = thrown.stack;
  if (thrown.cause !== undefined && depth < MAX_DEPTH) wire.cause = toWireError(thrown.cause, depth + 1);
  return wire;
}

/**
 * An object thrown that is not an `Error`: crypto-wasm throws its own classes this way
 * (`MegolmDecryptionError`, whose `code` and `description` are getters on its prototype). Its
 * fields — own and getters alike — go as data, and it is rebuilt as an `Error` of that name.
 */
function objectWireError(thrown: object): WireError {
  const fields: Record<string, unknown> = {};
  const names = new Set(Object.keys(thrown));
  for (let proto = Object.getPrototypeOf(thrown); proto !== null && proto !== Object.prototype; ) {
    for (const [key, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
      if (descriptor.get !== undefined) names.add(key);
    }
    proto = Object.getPrototypeOf(proto);
  }
  for (const key of names) {
    let item: unknown;
    try {
      item = (thrown as Record<string, unknown>)[key];
    } catch {
      continue;
    }
    const copy = plainCopy(item, 0);
    if (copy !== undefined) fields[key] = copy;
  }
  const name = (thrown as { constructor?: { name?: unknown } }).constructor?.name;
  const text = [fields.description, fields.message].find((t) => typeof t === "string") as string | undefined;
  return {
    name: typeof name === "string" && name !== "Object" ? name : "Error",
    message: text ?? String(thrown),
    fields,
  };
}

/** The error a `WireError` describes, as an instance of its class where this SDK knows it. */
export function fromWireError(wire: WireError): unknown {
  if (wire.value !== undefined) return wire.value;
  const Class = CLASSES[wire.name] ?? Error;
  // Built without running the constructor (each takes its own arguments); the fields follow.
  const error = Reflect.construct(Error, [wire.message], Class) as Error;
  Object.defineProperty(error, "name", {
    value: wire.name,
    writable: true,
    configurable: true,
    enumerable: true,
  });
  for (const [key, item] of Object.entries(wire.fields)) {
    Object.defineProperty(error, key, { value: item, writable: false, configurable: true, enumerable: true });
  }
  if (wire.stack !== undefined) {
    Object.defineProperty(error, "stack", { value: wire.stack, writable: true, configurable: true });
  }
  if (wire.cause !== undefined) {
    Object.defineProperty(error, "cause", {
      value: fromWireError(wire.cause),
      writable: true,
      configurable: true,
    });
  }
  return error;
}

/** Primitives, arrays and plain objects (depth-limited); errors by their wire form; nothing else. */
function plainCopy(value: unknown, depth: number): unknown {
  if (value === null || ["string", "number", "boolean"].includes(typeof value)) return value;
  if (depth >= MAX_DEPTH || typeof value !== "object") return undefined;
  if (value instanceof Error) return fromWireLater(toWireError(value, depth + 1));
  if (Array.isArray(value)) return value.map((v) => plainCopy(v, depth + 1)).filter((v) => v !== undefined);
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const copy = plainCopy(item, depth + 1);
    if (copy !== undefined) out[key] = copy;
  }
  return out;
}

/** An error inside a field travels as plain data; it is not rebuilt. */
function fromWireLater(wire: WireError): Record<string, unknown> {
  return { name: wire.name, message: wire.message, ...wire.fields };
}
