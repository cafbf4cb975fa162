/**
 * How many events to hand crypto-wasm in one call, chosen by a time budget measured as the drain
 * goes. Each `receiveEvents` call has a fixed cost (≈ 8 ms on one core, whatever the batch) on top
 * of ≈ 1.4 ms per event, so small fixed slices waste throughput and large ones block the thread:
 * sizing slices so one call takes about `budgetMs` amortises the fixed cost as far as the budget
 * allows, on fast and slow machines alike. Pure: durations in, sizes out.
 */

/** The first slice is small: the first call into a freshly opened device is the slowest. */
export const initialSliceEvents = 8;
/** One call never takes more than this many events, whatever the budget says. */
export const maxSliceEvents = 1_000;
/**
 * Default time one crypto call may take, in ms. Measured (`npm run bench`, 5,000 events): 1.18×
 * the crypto alone with the longest event-loop block 52–59 ms (page parsing included); 80 ms gives
 * 1.12× and ~100 ms blocks, 160 ms 1.08× and ~180 ms. One thread cannot have both.
 */
export const defaultSliceBudgetMs = 40;

/**
 * The size of the next slice after a call on `events` events took `tookMs`. Grows at most ×2 a
 * step (a measurement of 0 ms — a coarse or manual clock — only doubles), shrinks as far as the
 * measurement says, and stays within [1, `maxSliceEvents`].
 */
export function nextSliceSize(input: { events: number; tookMs: number; budgetMs: number }): number {
  const { events, tookMs, budgetMs } = input;
  const factor = tookMs > 0 ? Math.min(2, budgetMs / tookMs) : 2;
  const next = Math.floor(Math.max(1, events) * factor);
  if (!Number.isFinite(next)) return initialSliceEvents;
  return Math.min(maxSliceEvents, Math.max(1, next));
}
