import type { AppliedRecipient, RecipientDecision, RoomSendResult } from "matrix-e2ee-devices";

/** What one send did for one device, as the demo's tables show it. */
export interface SendOutcome {
  kind: AppliedRecipient["outcome"];
  code?: string | undefined;
  decision?: RecipientDecision | undefined;
}

/**
 * Each device the send's plan names, with what was applied to it. A device the plan names and the
 * crypto layer did not was dealt with by an earlier send of the session: `unchanged`.
 */
export function sendOutcomes(
  result: RoomSendResult,
): { decision: RecipientDecision; outcome: SendOutcome }[] {
  const applied = new Map(result.applied.map((a) => [`${a.userId}\u0000${a.deviceId}`, a]));
  return result.plan.devices.map((decision) => {
    const done = applied.get(`${decision.userId}\u0000${decision.deviceId}`);
    return {
      decision,
      outcome: { kind: done?.outcome ?? "unchanged", code: done?.code ?? decision.code, decision },
    };
  });
}

/** "got the room key" / "withheld: m.unverified — <reason>" / "unchanged (had it already)". */
export function outcomeText(outcome: SendOutcome | undefined): string {
  if (outcome === undefined) return "no message sent since Bob's client saw it";
  switch (outcome.kind) {
    case "shared":
      return "got the room key";
    case "withheld":
      return `withheld: ${outcome.code ?? "?"} — ${outcome.decision?.reason ?? "no reason given"}`;
    case "unchanged":
      return "unchanged (had it already)";
  }
}
