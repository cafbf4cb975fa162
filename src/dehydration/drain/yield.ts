/**
 * Lets the event loop run — input, rendering, socket reads, the next page's response — between two
 * slices of crypto work. Not a timer wait: no time passes on any clock, so it works the same under
 * a `ManualClock`.
 *
 * In a page (a `document` exists) it yields with `setTimeout(0)`: measured in Chromium while
 * draining 2,000 events, that let the page paint ≈ 53 frames/s, where a `MessageChannel` message
 * gave ≈ 36 and `scheduler.yield()` ≈ 9 — both resume ahead of rendering. Elsewhere (Node, Electron's
 * main process, workers) nothing paints: `setImmediate` (after pending I/O) where it exists, else a
 * `MessageChannel` round-trip (a macrotask without the 4 ms clamp nested timers get).
 */
export function yieldToEventLoop(): Promise<void> {
  const scope = globalThis as {
    document?: unknown;
    setImmediate?: (callback: () => void) => unknown;
    setTimeout: (callback: () => void, ms: number) => unknown;
  };
  if (scope.document !== undefined) return new Promise((resolve) => scope.setTimeout(() => resolve(), 0));
  const setImmediateFn = scope.setImmediate;
  if (typeof setImmediateFn === "function") return new Promise((resolve) => setImmediateFn(() => resolve()));
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(undefined);
  });
}
