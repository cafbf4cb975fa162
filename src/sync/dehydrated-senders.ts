import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import { toDeviceId, toUserId } from "../crypto/identifiers.js";

/**
 * MSC3814, "Security considerations": a dehydrated device never sends, so a to-device message that
 * claims to come from one is dropped. crypto-wasm drops the encrypted ones itself (the sender's
 * keys say `dehydrated`); a message in clear names its device only in its content —
 * `requesting_device_id` (key and secret requests) or `from_device` (verification) — so those are
 * checked here, before the crypto layer acts on them (a verification request would otherwise
 * reach the app as if a real device asked).
 */

/** A to-device message left out because it names a dehydrated device as its sender. */
export interface DroppedToDevice {
  type: string;
  sender: string;
  deviceId: string;
  reason: "from_dehydrated_device";
}

/** The fields of a plaintext to-device content that name the sending device. */
const SENDER_DEVICE_FIELDS = ["requesting_device_id", "from_device"] as const;

export async function dropFromDehydratedDevices(
  machine: Pick<OlmMachine, "getDevice">,
  events: readonly unknown[],
): Promise<{ kept: unknown[]; dropped: DroppedToDevice[] }> {
  const kept: unknown[] = [];
  const dropped: DroppedToDevice[] = [];
  const verdicts = new Map<string, Promise<boolean>>();
  for (const event of events) {
    const claim = senderDevice(event);
    if (claim === undefined) {
      kept.push(event);
      continue;
    }
    const key = `${claim.sender}\u0000${claim.deviceId}`;
    let verdict = verdicts.get(key);
    if (verdict === undefined) {
      verdict = isDehydrated(machine, claim.sender, claim.deviceId);
      verdicts.set(key, verdict);
    }
    if (await verdict) dropped.push({ ...claim, reason: "from_dehydrated_device" });
    else kept.push(event);
  }
  return { kept, dropped };
}

/** The device a plaintext event says it comes from; encrypted events are the crypto layer's to judge. */
function senderDevice(event: unknown): { type: string; sender: string; deviceId: string } | undefined {
  if (typeof event !== "object" || event === null) return undefined;
  const { type, sender, content } = event as { type?: unknown; sender?: unknown; content?: unknown };
  if (typeof type !== "string" || type === "m.room.encrypted" || typeof sender !== "string") return undefined;
  if (typeof content !== "object" || content === null) return undefined;
  for (const field of SENDER_DEVICE_FIELDS) {
    const deviceId = (content as Record<string, unknown>)[field];
    if (typeof deviceId === "string" && deviceId !== "") return { type, sender, deviceId };
  }
  return undefined;
}

/** Unknown users and devices, and ids crypto-wasm cannot parse, are not dehydrated as far as known. */
async function isDehydrated(
  machine: Pick<OlmMachine, "getDevice">,
  userId: string,
  deviceId: string,
): Promise<boolean> {
  let device: Awaited<ReturnType<OlmMachine["getDevice"]>>;
  let ids: [ReturnType<typeof toUserId>, ReturnType<typeof toDeviceId>] | undefined;
  try {
    ids = [toUserId(userId), toDeviceId(deviceId)];
    device = await machine.getDevice(ids[0], ids[1]);
  } catch {
    return false;
  } finally {
    // Borrowed by the call.
    ids?.[0].free();
    ids?.[1].free();
  }
  if (device === undefined) return false;
  try {
    return device.isDehydrated;
  } finally {
    device.free();
  }
}
