import type { DrainOutcome } from "../../../src/dehydration/drain-dehydrated-device.js";

/** What a drain of `deviceId` that read to the end returns (the counts are arbitrary). */
export function completedDrain(deviceId: string): DrainOutcome {
  const counts = { pages: 1, events: 1, roomKeys: 1 };
  return {
    outcome: "completed",
    endReason: "no_next_batch",
    deviceId,
    totals: counts,
    run: { ...counts, invalidEvents: 0 },
    resumedFrom: undefined,
    cursor: undefined,
    durationMs: 1,
    longestSliceMs: 1,
  };
}

/** What a drain of `deviceId` returns when the server led it back to a cursor it had read. */
export function truncatedDrain(deviceId: string): DrainOutcome {
  const counts = { pages: 2, events: 2, roomKeys: 2 };
  return {
    outcome: "truncated",
    reason: "repeated_cursor",
    deviceId,
    totals: counts,
    run: { ...counts, invalidEvents: 0 },
    resumedFrom: undefined,
    cursor: "c1",
    durationMs: 1,
    longestSliceMs: 1,
  };
}
