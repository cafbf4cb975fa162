/**
 * Lets the event loop run — input, rendering, socket reads, the next page's response — between two
 * slices of crypto work. Not a timer: no time passes on any clock, so it works the same under a
 * `ManualClock`. Prefers `scheduler.yield()` (Chromium, Electron renderers: the continuation keeps
 * its priority), then `setImmediate` (Node: after pending I/O), then a `MessageChannel` round-trip
 * (any other browser: a macrotask without the 4 ms clamp nested timers get).
 */
export function yieldToEventLoop(): Promise<void> {
  const scope = globalThis as {
    scheduler?: { yield?: () => Promise<void> };
    setImmediate?: (callback: () => void) => unknown;
  };
  if (typeof scope.scheduler?.yield === "function") return scope.scheduler.yield();
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
