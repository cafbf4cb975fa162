import { keysUploadResponseSchema } from "../http/schemas/keys.js";
import type { MatrixHttp } from "../http/types.js";
import type { SyncE2eeResponse } from "./e2ee-changes.js";

/**
 * Some servers leave a zero one-time-key count out of sliding sync (continuwuity; tuwunel before
 * it kept zeros), which MSC3884 reads as "unchanged": a device whose keys were all claimed would
 * never hear it and never upload more. So when a sliding response carries no count at a moment
 * the count may well have changed — the first response of a run (keys may have been claimed
 * while the device was offline) or one delivering Olm pre-key messages (each used up one of our
 * keys) — the loop asks the server directly: `POST /keys/upload` with nothing to upload answers
 * with the current counts (Client-Server API, "Key management API"). Servers that send the count
 * (Synapse) never trigger it.
 */
export function needsCountRefresh(response: SyncE2eeResponse, firstOfRun: boolean): boolean {
  if (response.kind !== "sliding") return false;
  if (response.e2ee?.deviceOneTimeKeysCount !== undefined) return false;
  return firstOfRun || (response.toDevice?.events ?? []).some(isOlmPreKeyMessage);
}

/** An `m.room.encrypted` to-device event holding an Olm pre-key message (type 0) for anyone. */
function isOlmPreKeyMessage(event: unknown): boolean {
  const e = event as { type?: unknown; content?: { algorithm?: unknown; ciphertext?: unknown } } | null;
  if (e?.type !== "m.room.encrypted" || e.content?.algorithm !== "m.olm.v1.curve25519-aes-sha2") return false;
  const ciphertext = e.content.ciphertext;
  if (typeof ciphertext !== "object" || ciphertext === null) return false;
  return Object.values(ciphertext).some((m) => (m as { type?: unknown } | null)?.type === 0);
}

/** The server's current one-time-key counts for this device. */
export async function fetchOneTimeKeyCounts(
  http: MatrixHttp,
  signal?: AbortSignal,
): Promise<Record<string, number>> {
  const response = await http.request({
    method: "POST",
    path: "/_matrix/client/v3/keys/upload",
    body: {},
    schema: keysUploadResponseSchema,
    // Uploads nothing: repeating it is harmless.
    retry: "safe",
    ...(signal ? { signal } : {}),
  });
  return response.one_time_key_counts;
}

/** `response` with the fetched counts in place of the missing ones. */
export function withCounts(response: SyncE2eeResponse, counts: Record<string, number>): SyncE2eeResponse {
  if (response.kind !== "sliding") return response;
  return { ...response, e2ee: { ...response.e2ee, deviceOneTimeKeysCount: counts } };
}
