import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import type { MatrixHttp } from "../http/types.js";
import { toUserId } from "./identifiers.js";
import { sendOutgoingRequest } from "./send-outgoing-request.js";

/**
 * Establishes Olm sessions with every known device of `userIds` that lacks one, by claiming one-time
 * keys (`keys/claim`). crypto-wasm does not put claims in `outgoingRequests()`; an app asks for them
 * before encrypting to those users. Their device lists must be current (the outgoing-request loop
 * has sent the machine's key queries). The claim is sent once and never replayed by the transport:
 * a replay after a lost response burns one-time keys. On failure it throws and the caller may call
 * again, which makes a fresh claim.
 *
 * Returns `false` when every device already has a session (nothing was sent).
 */
export async function claimMissingSessions(
  machine: OlmMachine,
  http: MatrixHttp,
  userIds: readonly string[],
  signal?: AbortSignal,
): Promise<boolean> {
  // The machine consumes the ids; the request it returns is ours to free.
  const request = await machine.getMissingSessions(userIds.map(toUserId));
  if (!request) return false;
  try {
    await sendOutgoingRequest(machine, http, request, signal);
  } finally {
    request.free();
  }
  return true;
}
