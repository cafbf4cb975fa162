import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The in-process mock must load in a browser: nothing reachable through static imports from the
 * `testing` entry point may import a `node:` module (node-server.ts is loaded on demand only).
 */
function staticImportGraph(entry: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (graph.has(file)) continue;
    const source = readFileSync(file, "utf8");
    // Type-only imports are erased at build time, so they cannot pull a module into a bundle.
    const specifiers = [...source.matchAll(/^\s*(?:import|export)\s(?!type\s)[^;]*?from\s+"([^"]+)"/gms)].map(
      (m) => m[1]!,
    );
    graph.set(file, specifiers);
    for (const s of specifiers) {
      if (s.startsWith(".")) queue.push(resolve(dirname(file), s.replace(/\.js$/, ".ts")));
    }
  }
  return graph;
}

describe("browser safety of the testing entry point", () => {
  it("reaches no node: module through static imports", () => {
    const graph = staticImportGraph(resolve("src/testing/index.ts"));
    expect(graph.size).toBeGreaterThan(10);
    const offenders = [...graph].filter(([, specs]) =>
      specs.some((s) => s.startsWith("node:") || s === "http"),
    );
    expect(offenders.map(([file]) => file)).toEqual([]);
    // The socket server is reachable only through a dynamic import.
    expect([...graph.keys()].some((f) => f.endsWith("node-server.ts"))).toBe(false);
  });
});
