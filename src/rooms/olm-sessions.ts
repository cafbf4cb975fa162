import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import { toUserId } from "../crypto/identifiers.js";
import { sendOutgoingRequest } from "../crypto/send-outgoing-request.js";
import type { MatrixHttp } from "../http/types.js";
import { deviceKey } from "./applied-plan.js";
import type { DeviceFacts } from "./recipient-plan.js";

/**
 * Sets up Olm sessions before a room key is shared, and remembers which devices the server had no
 * one-time key for: crypto-wasm withholds the key from those with `m.no_olm`, and says so nowhere
 * else, so the plan learns it here. In memory: after a reload the next claim asks again.
 */
export class OlmSessions {
  readonly #unavailable = new Set<string>();
  readonly #available = new Set<string>();

  state(userId: string, deviceId: string): DeviceFacts["olmSession"] {
    const key = deviceKey(userId, deviceId);
    if (this.#unavailable.has(key)) return "unavailable";
    return this.#available.has(key) ? "available" : "unknown";
  }

  /**
   * Claims one-time keys for the devices of `userIds` that have no session (`keys/claim`, sent once,
   * never replayed: a replay burns keys). A device asked for and not answered has no session.
   */
  async claim(
    machine: Pick<OlmMachine, "getMissingSessions" | "outgoingRequests" | "markRequestAsSent">,
    http: MatrixHttp,
    userIds: readonly string[],
    signal: AbortSignal,
  ): Promise<void> {
    const request = await machine.getMissingSessions(userIds.map(toUserId));
    if (!request) return;
    try {
      const asked = devicesIn((JSON.parse(request.body) as { one_time_keys?: unknown }).one_time_keys);
      const response = (await sendOutgoingRequest(machine, http, request, signal)) as {
        one_time_keys?: unknown;
      };
      const answered = new Set(devicesIn(response.one_time_keys, true).map(([u, d]) => deviceKey(u, d)));
      for (const [userId, deviceId] of asked) {
        const key = deviceKey(userId, deviceId);
        if (answered.has(key)) {
          this.#available.add(key);
          this.#unavailable.delete(key);
        } else {
          this.#unavailable.add(key);
          this.#available.delete(key);
        }
      }
    } finally {
      request.free();
    }
  }
}

/** `[userId, deviceId]` pairs of a `{user: {device: …}}` map; with `nonEmpty`, only devices given keys. */
function devicesIn(map: unknown, nonEmpty = false): [string, string][] {
  const out: [string, string][] = [];
  if (typeof map !== "object" || map === null) return out;
  for (const [userId, devices] of Object.entries(map)) {
    if (typeof devices !== "object" || devices === null) continue;
    for (const [deviceId, keys] of Object.entries(devices)) {
      if (nonEmpty && (typeof keys !== "object" || keys === null || Object.keys(keys).length === 0)) continue;
      out.push([userId, deviceId]);
    }
  }
  return out;
}
