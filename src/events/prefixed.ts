import type { TypedEmitter } from "./emitter.js";

/**
 * A module's events under names that say the module: `{ page: P }` under `"dehydration.drain"`
 * becomes `{ "dehydration.drain.page": P }`. The client's one event stream is the union of these.
 */
export type Prefixed<Prefix extends string, Events> = {
  [K in keyof Events & string as `${Prefix}.${K}`]: Events[K];
};

/**
 * Re-emits every event of `source` through `emit` under `prefix`; returns the unsubscribe. `emit`
 * is the target stream's, whose type (a union of `Prefixed` maps) includes these names.
 */
export function forwardPrefixed<Events extends { [K in keyof Events]: unknown }>(
  source: Pick<TypedEmitter<Events>, "onAny">,
  prefix: string,
  emit: (event: string, payload: unknown) => void,
): () => void {
  return source.onAny((event, payload) => emit(`${prefix}.${String(event)}`, payload));
}
