import { DehydratedDeviceKey, type OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import { getCrossSigningStatus } from "../../crypto/cross-signing.js";
import { machineUserId } from "../../crypto/identifiers.js";
import { DehydrationError } from "./errors.js";
import { MAX_DISPLAY_NAME_LENGTH } from "./names.js";
import { type PutDehydratedDeviceBody, putDehydratedDeviceBodySchema } from "./wire-schemas.js";

type UploadMachine = Pick<OlmMachine, "dehydratedDevices" | "crossSigningStatus" | "userId">;

/**
 * Has crypto-wasm make a new dehydrated device and the whole `PUT /dehydrated_device` body for it
 * (MSC3814): device keys flagged `dehydrated` and cross-signed with our self-signing key, one-time
 * keys and a fallback key, and `device_data` — the device's account encrypted with `key`.
 *
 * The body is checked before it is returned: the upload replaces the user's current device, so a
 * body the server would refuse must never be sent.
 */
export async function buildDehydratedDeviceUpload(
  machine: UploadMachine,
  key: Uint8Array,
  displayName: string,
): Promise<PutDehydratedDeviceBody> {
  if (typeof displayName !== "string" || displayName.length > MAX_DISPLAY_NAME_LENGTH) {
    throw new DehydrationError(
      "invalid_display_name",
      `The dehydrated device's display name must be a string of at most ${MAX_DISPLAY_NAME_LENGTH} characters`,
    );
  }
  await assertSelfSigningKey(machine);
  const devices = machine.dehydratedDevices();
  const wasmKey = DehydratedDeviceKey.createKeyFromArray(key);
  let text: string;
  try {
    const device = await devices.create();
    try {
      const request = await device.keysForUpload(displayName, wasmKey);
      text = request.body;
      request.free();
    } catch (cause) {
      // The key was checked above, so this is crypto-wasm failing to sign with it.
      throw missingSelfSigningKey(cause);
    } finally {
      device.free();
    }
  } finally {
    wasmKey.free();
    devices.free();
  }
  return checkUploadBody(text, machineUserId(machine));
}

/** `missing_self_signing_key` unless the machine holds the private self-signing key. */
export async function assertSelfSigningKey(machine: Pick<OlmMachine, "crossSigningStatus">): Promise<void> {
  if (!(await getCrossSigningStatus(machine)).hasSelfSigning) throw missingSelfSigningKey();
}

/** Parses and checks crypto-wasm's body; errors list field paths only (the body holds keys). */
export function checkUploadBody(text: string, userId: string): PutDehydratedDeviceBody {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw malformed(["(body): not JSON"]);
  }
  const parsed = putDehydratedDeviceBodySchema.safeParse(json);
  if (!parsed.success) {
    throw malformed(parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.code}`));
  }
  const body = parsed.data;
  const problems: string[] = [];
  const id = body.device_id;
  if (body.device_keys.device_id !== id) problems.push("device_keys.device_id: differs from device_id");
  if (body.device_keys.user_id !== userId) problems.push("device_keys.user_id: not our user");
  // Every dehydrated device crypto-wasm makes is named after its Curve25519 key; receivers check it.
  if (body.device_keys.keys[`curve25519:${id}`] !== id) {
    problems.push("device_keys.keys: the Curve25519 key is not the device id");
  }
  if (Object.keys(body.device_keys.signatures[userId] ?? {}).length < 2) {
    problems.push("device_keys.signatures: not signed by both the device and the self-signing key");
  }
  if (Object.keys(body.one_time_keys).length === 0) problems.push("one_time_keys: empty");
  if (Object.keys(body.fallback_keys).length === 0) problems.push("fallback_keys: empty");
  if (problems.length > 0) throw malformed(problems);
  return body;
}

function malformed(problems: string[]): DehydrationError {
  return new DehydrationError(
    "malformed_upload",
    `crypto-wasm produced a dehydrated-device upload MSC3814 does not allow: ${problems.slice(0, 5).join("; ")}`,
    { details: { problems } },
  );
}

function missingSelfSigningKey(cause?: unknown): DehydrationError {
  return new DehydrationError(
    "missing_self_signing_key",
    "Creating a dehydrated device needs the private self-signing key; restore the cross-signing keys " +
      "from secret storage (or set up cross-signing) first",
    cause === undefined ? {} : { cause },
  );
}
