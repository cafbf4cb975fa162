import type { RecipientDecision, RecipientPlan } from "./recipient-plan.js";

/**
 * What the crypto layer actually did with a room key. crypto-wasm has no call that says who got it:
 * it is read from the to-device requests `shareRoomKey` returned — `m.room.encrypted` payloads (the
 * key, Olm-encrypted per device) and `m.room_key.withheld` notices with their code.
 */

export interface AppliedRecipient {
  userId: string;
  deviceId: string;
  /**
   * `shared`: an Olm-encrypted room key went to the device. `withheld`: an `m.room_key.withheld`
   * with `code`. `unchanged`: nothing was sent because an earlier share of the same session (before
   * this client was created) already dealt with the device, or `m.no_olm` was sent to it once
   * already (crypto-wasm sends that code once per device, ever).
   */
  outcome: "shared" | "withheld" | "unchanged";
  code?: string;
}

/** One request as `shareRoomKey` returns it; only the fields read here. */
export interface ShareRequest {
  event_type: string;
  body: string;
}

/** The recipients named in `requests`, in order; a device named twice keeps its last outcome. */
export function appliedFromRequests(requests: readonly ShareRequest[]): AppliedRecipient[] {
  const byDevice = new Map<string, AppliedRecipient>();
  for (const request of requests) {
    const shared = request.event_type === "m.room.encrypted";
    if (!shared && request.event_type !== "m.room_key.withheld") continue;
    const messages = messagesOf(request.body);
    for (const [userId, devices] of Object.entries(messages)) {
      for (const [deviceId, content] of Object.entries(devices)) {
        const entry: AppliedRecipient = shared
          ? { userId, deviceId, outcome: "shared" }
          : { userId, deviceId, outcome: "withheld", code: withheldCode(content) };
        byDevice.set(deviceKey(userId, deviceId), entry);
      }
    }
  }
  return [...byDevice.values()];
}

/** A device's key in maps of recipients. */
export function deviceKey(userId: string, deviceId: string): string {
  return `${userId}\u0000${deviceId}`;
}

/** Where the applied plan and a prediction disagree on one device. */
export interface PlanDifference {
  userId: string;
  deviceId: string;
  /** `absent`: the prediction did not name this device. */
  predicted: RecipientDecision["decision"] | "absent";
  predictedCode?: string;
  applied: AppliedRecipient["outcome"];
  appliedCode?: string;
}

/**
 * The devices whose applied outcome contradicts `plan`: a key shared where the plan withheld it or
 * did not know the device, a key withheld where the plan shared it or with another code, anything
 * done where the plan refused to send. `unchanged` contradicts nothing: what an earlier share did
 * is not known here.
 */
export function planDifferences(plan: RecipientPlan, applied: readonly AppliedRecipient[]): PlanDifference[] {
  const predicted = new Map(plan.devices.map((d) => [deviceKey(d.userId, d.deviceId), d]));
  const differences: PlanDifference[] = [];
  for (const entry of applied) {
    if (entry.outcome === "unchanged") continue;
    const decision = predicted.get(deviceKey(entry.userId, entry.deviceId));
    if (agrees(decision, entry)) continue;
    differences.push({
      userId: entry.userId,
      deviceId: entry.deviceId,
      predicted: decision?.decision ?? "absent",
      ...(decision?.code === undefined ? {} : { predictedCode: decision.code }),
      applied: entry.outcome,
      ...(entry.code === undefined ? {} : { appliedCode: entry.code }),
    });
  }
  return differences;
}

function agrees(decision: RecipientDecision | undefined, entry: AppliedRecipient): boolean {
  if (decision === undefined) return false;
  if (entry.outcome === "shared") return decision.decision === "share";
  // Whether an Olm session can be set up is known only once the crypto layer tried: a device
  // planned to share that it could not reach got nothing, which contradicts no one's intent.
  if (entry.code === "m.no_olm" && decision.decision === "share") return true;
  return decision.decision === "withhold" && decision.code === entry.code;
}

/**
 * The session's cumulative plan: what this send applied over what earlier sends of the same session
 * applied, and `unchanged` for every predicted device neither names.
 */
export function mergeApplied(
  plan: RecipientPlan,
  earlier: ReadonlyMap<string, AppliedRecipient>,
  now: readonly AppliedRecipient[],
): Map<string, AppliedRecipient> {
  const merged = new Map(earlier);
  for (const entry of now) merged.set(deviceKey(entry.userId, entry.deviceId), entry);
  for (const d of plan.devices) {
    const key = deviceKey(d.userId, d.deviceId);
    if (!merged.has(key)) merged.set(key, { userId: d.userId, deviceId: d.deviceId, outcome: "unchanged" });
  }
  return merged;
}

function messagesOf(body: string): Record<string, Record<string, unknown>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return {};
  }
  const messages = (parsed as { messages?: unknown } | null)?.messages;
  if (typeof messages !== "object" || messages === null) return {};
  const out: Record<string, Record<string, unknown>> = {};
  for (const [userId, devices] of Object.entries(messages)) {
    if (typeof devices === "object" && devices !== null) out[userId] = devices as Record<string, unknown>;
  }
  return out;
}

function withheldCode(content: unknown): string {
  const code = (content as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "";
}
