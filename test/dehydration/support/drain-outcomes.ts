import type { DrainResumeState } from "../../../src/dehydration/drain/drain-loop.js";
import type { DrainOutcome } from "../../../src/dehydration/drain/drainer.js";

function resumeAt(cursor: string | undefined): DrainResumeState {
  const position = { cursor, pages: 1, events: 1, roomKeys: 1 };
  return { position, trusted: position, guard: { events: 0, elapsedMs: 0 } };
}

/** What a drain of `deviceId` that read to the end returns (the counts are arbitrary). */
export function completedDrain(deviceId: string): DrainOutcome {
  const counts = { pages: 1, events: 1, roomKeys: 1 };
  return {
    outcome: "completed",
    endReason: "no_next_batch",
    deviceId,
    totals: counts,
    run: { ...counts, invalidEvents: 0, skippedEvents: 0 },
    importedKeys: [{ roomId: "!room:example.org", sessionId: "s1", senderKey: "curve" }],
    resumedFrom: undefined,
    cursor: undefined,
    resume: resumeAt(undefined),
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
    run: { ...counts, invalidEvents: 0, skippedEvents: 0 },
    importedKeys: [],
    resumedFrom: undefined,
    untrustedCursor: "c1",
    cursor: undefined,
    resume: resumeAt(undefined),
    durationMs: 1,
    longestSliceMs: 1,
  };
}
