import { errorGuard, SdkError } from "../errors/sdk-error.js";
import type { AppliedRecipient, PlanDifference } from "./applied-plan.js";
import type { RecipientPlan } from "./recipient-plan.js";

export type RoomErrorCode =
  /** An argument was malformed (room id, event type, content, options); nothing was done. */
  | "invalid_argument"
  /** The room has no `m.room.encryption` state: this SDK does not send in clear. */
  | "room_not_encrypted"
  /** The room's state or members could not be read (not a member, the server failing: `cause`). */
  | "room_unavailable"
  /** The room's algorithm is not `m.megolm.v1.aes-sha2`. */
  | "unsupported_algorithm"
  /** The sharing strategy refuses to share the room key (`details.plan.refusal` says why). */
  | "sharing_refused"
  /**
   * What the crypto layer did differs from the plan (`details.predicted`, `details.applied`,
   * `details.differences`). Nothing was sent, and the room's session was discarded.
   */
  | "plan_mismatch"
  /** A request of the send failed (`cause`); what was sent stays sent, a retry continues. */
  | "send_failed";

/** Errors of `client.rooms`. */
export class RoomError extends SdkError<RoomErrorCode> {
  override name = "RoomError";
}

export const isRoomError = errorGuard<RoomError>("RoomError");

/** The typed disagreement between a plan and what the crypto layer produced. */
export function planMismatch(
  predicted: RecipientPlan,
  applied: readonly AppliedRecipient[],
  differences: readonly PlanDifference[],
  cause?: unknown,
): RoomError {
  return new RoomError(
    "plan_mismatch",
    `the room key would reach other devices than planned (${differences.length} differ); nothing was sent`,
    {
      details: { predicted, applied, differences },
      ...(cause === undefined ? {} : { cause }),
    },
  );
}
