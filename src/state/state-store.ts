import { errorGuard, SdkError } from "../errors/sdk-error.js";

/**
 * A small key-value store for what the SDK keeps beside the crypto store: drain checkpoints,
 * rotation schedules, sync positions. Values must be JSON-serialisable and are read back as fresh
 * copies; callers validate what they read (a store may be shared, old, or edited by hand).
 *
 * `durability` lets a caller refuse to claim more than it has: a checkpoint kept in a durable store
 * while the crypto store is in memory would, after a restart, count room keys that no longer exist.
 */
export interface StateStore {
  get<T>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
  readonly durability: "memory" | "durable";
}

/**
 * `not_serialisable`: the value does not survive JSON; `corrupt_value`: what is stored is not JSON
 * text; `store_failed`: the backing store (IndexedDB) failed.
 */
export type StateStoreErrorCode = "not_serialisable" | "corrupt_value" | "store_failed";

/** A state store operation failed; `code` says why. */
export class StateStoreError extends SdkError<StateStoreErrorCode> {
  override name = "StateStoreError";
}

/** Recognises a `StateStoreError`, also one from another copy of this package. */
export const isStateStoreError = errorGuard<StateStoreError>("StateStoreError");

/**
 * Both stores keep the JSON text rather than the value, so they behave alike: no shared references,
 * and what a caller reads back is exactly what JSON round-trips (a Map becomes `{}`, a Date a string —
 * callers validate what they read); a bigint or a cycle fails in memory too, not only in the browser.
 */
export function serialiseStateValue(key: string, value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (cause) {
    throw new StateStoreError("not_serialisable", `The value for "${key}" is not JSON-serialisable`, {
      cause,
      details: { key },
    });
  }
  if (text === undefined) {
    throw new StateStoreError("not_serialisable", `The value for "${key}" is not JSON-serialisable`, {
      details: { key },
    });
  }
  return text;
}

export function deserialiseStateValue<T>(key: string, text: unknown): T {
  if (typeof text !== "string") {
    throw new StateStoreError("corrupt_value", `The stored value for "${key}" is not JSON text`, {
      details: { key },
    });
  }
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw new StateStoreError("corrupt_value", `The stored value for "${key}" is not valid JSON`, {
      cause,
      details: { key },
    });
  }
}
