/**
 * A secret storage key the caller holds, with the id of its `m.secret_storage.key.*` description.
 * Keys this SDK returns do not print their bytes (see `secretStorageKey`).
 */
export interface SecretStorageKey {
  readonly keyId: string;
  readonly key: Uint8Array;
}

const inspectSymbol = Symbol.for("nodejs.util.inspect.custom");

/**
 * A secret-storage key that does not print its bytes. `console.log(result)` in Node,
 * `JSON.stringify` and string conversion show only the key id; the bytes stay readable as `key`
 * for the code that needs them. The helpers are non-enumerable own properties, so a structured
 * clone (a worker's `postMessage`) still carries `keyId` and `key` as plain data, and spreading
 * the object (`{ ...k }`) gives a plain object the app chose to make printable.
 *
 * Wiping is the holder's job: `k.key.fill(0)` once it is no longer needed.
 */
export function secretStorageKey(keyId: string, key: Uint8Array): SecretStorageKey {
  return withHiddenKey({ keyId, key }, "SecretStorageKey");
}

/** Adds the non-printing helpers to `holder`, an object with a `keyId` and secret fields. */
export function withHiddenKey<T extends { readonly keyId: string }>(holder: T, label: string): T {
  const shown = () => ({ keyId: holder.keyId });
  const text = () => `${label}(${holder.keyId})`;
  Object.defineProperties(holder, {
    toJSON: { value: shown, enumerable: false },
    toString: { value: text, enumerable: false },
    [inspectSymbol]: {
      value: () => `${label} { keyId: ${JSON.stringify(holder.keyId)} }`,
      enumerable: false,
    },
  });
  return holder;
}
