import type { DrainCounts, DrainPageReport, ReceivedRoomKey } from "./drain-loop.js";
import type { PaginationEndReason, PaginationTruncationReason } from "./pagination.js";

/**
 * Progress of a drain of the dehydrated device. Payloads carry ids, cursors and counts,
 * never key material, so an app may log them as they are.
 */
export interface DrainEvents {
  /** The server has a dehydrated device; `resumeFrom` is the checkpoint's cursor when resuming. */
  found: { deviceId: string; resumeFrom: string | undefined };
  /** The device was validated and opened with the dehydration key. */
  rehydrated: { deviceId: string };
  /** One page's room keys are stored (and the checkpoint written). */
  page: DrainPageReport;
  /** The last page was reached. `totals` include resumed runs; `durationMs` is this run's. */
  completed: {
    deviceId: string;
    endReason: PaginationEndReason;
    totals: DrainCounts;
    run: DrainCounts & { invalidEvents: number; skippedEvents: number };
    /** Every room key this run stored: retry decrypting these rooms' messages. */
    importedKeys: readonly ReceivedRoomKey[];
    durationMs: number;
    longestSliceMs: number;
    resumedFrom: string | undefined;
  };
  /**
   * A loop guard cut the drain off; the device is kept (its messages are still on the server), and
   * the next drain starts again from `cursor`, the last trusted position, not from `untrustedCursor`.
   */
  truncated: {
    deviceId: string;
    reason: PaginationTruncationReason;
    totals: DrainCounts;
    cursor: string | undefined;
    untrustedCursor: string;
    /** Room keys this run stored all the same. */
    importedKeys: readonly ReceivedRoomKey[];
  };
  /** The drain failed; the checkpoint (if any) still points after the last stored page. */
  error: { deviceId: string | undefined; error: unknown };
}
