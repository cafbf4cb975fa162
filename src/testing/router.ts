import type { Route } from "./route.js";
import { compilePattern, type PathPattern } from "./route-pattern.js";

export type Resolution<R> =
  | { kind: "match"; route: R; params: Record<string, string> }
  | { kind: "wrong-method"; allowed: string[] }
  | { kind: "not-found" };

interface Entry<R> {
  pattern: PathPattern;
  byMethod: Map<string, R>;
}

/**
 * Method + path matching, as Synapse's `JsonResource` does it: the first pattern that matches the
 * path decides; if it has no handler for the method the answer is 405, if no pattern matches 404.
 * Patterns are bucketed by segment count, so a lookup only tries patterns of the right length.
 */
export class Router<R extends Pick<Route, "method" | "pattern">> {
  readonly #entries = new Map<string, Entry<R>>();
  readonly #bySegments = new Map<number, Entry<R>[]>();

  constructor(routes: readonly R[] = []) {
    for (const r of routes) this.add(r);
  }

  add(route: R): void {
    let entry = this.#entries.get(route.pattern);
    if (!entry) {
      entry = { pattern: compilePattern(route.pattern), byMethod: new Map() };
      this.#entries.set(route.pattern, entry);
      const n = route.pattern.split("/").length;
      const bucket = this.#bySegments.get(n) ?? [];
      bucket.push(entry);
      this.#bySegments.set(n, bucket);
    }
    if (entry.byMethod.has(route.method)) throw new Error(`duplicate route ${route.method} ${route.pattern}`);
    entry.byMethod.set(route.method, route);
  }

  resolve(method: string, path: string): Resolution<R> {
    const direct = this.#resolveExact(method, path);
    // Synapse serves every client endpoint under both r0 and v3 (`client_patterns`).
    if (direct.kind === "not-found" && path.startsWith("/_matrix/client/r0/")) {
      return this.#resolveExact(method, `/_matrix/client/v3/${path.slice("/_matrix/client/r0/".length)}`);
    }
    return direct;
  }

  #resolveExact(method: string, path: string): Resolution<R> {
    const bucket = this.#bySegments.get(path.split("/").length) ?? [];
    for (const entry of bucket) {
      const params = entry.pattern.match(path);
      if (!params) continue;
      const route = entry.byMethod.get(method);
      if (!route) return { kind: "wrong-method", allowed: [...entry.byMethod.keys()] };
      return { kind: "match", route, params };
    }
    return { kind: "not-found" };
  }
}
