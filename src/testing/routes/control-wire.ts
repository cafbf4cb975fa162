import { MatrixError } from "../route.js";

/**
 * What every `/_mock/` route shares. A control call over HTTP is the `MockControl` method of the
 * same name with its options in snake_case (`device_id` for `deviceId`), and the mistakes the
 * method reports with `RangeError` are the caller's: 400 `M_INVALID_PARAM`.
 */

type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Head}${Capitalize<CamelCase<Tail>>}`
  : S;

/** A parsed wire object as `MockControl` options: camelCase keys, absent fields left out. */
export type CamelCased<T> = {
  [K in keyof T as K extends string ? CamelCase<K> : never]: Exclude<T[K], undefined>;
};

/** Renames the top-level keys only: nested values (`device_keys`, …) are Matrix JSON, stored as sent. */
export function camelCased<T extends Record<string, unknown>>(wire: T): CamelCased<T> {
  const options: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(wire)) {
    if (value !== undefined) options[key.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase())] = value;
  }
  return options as CamelCased<T>;
}

/** Runs a control call, turning its `RangeError` into 400 `M_INVALID_PARAM` with the same message. */
export function asBadParam<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    if (err instanceof RangeError) throw new MatrixError(400, "M_INVALID_PARAM", err.message);
    throw err;
  }
}
