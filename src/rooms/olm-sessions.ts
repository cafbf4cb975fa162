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
  /**
   * crypto-wasm wants one `getMissingSessions` at a time (matrix-js-sdk's `KeyClaimManager` says
   * the same): two sends to two rooms would otherwise claim keys for the same device twice.
   */
  #claiming: Promise<void> = Promise.resolve();

  state(userId: string, deviceId: string): DeviceFacts["olmSession"] {
    const key = deviceKey(userId, deviceId);
    if (this.#unavailable.has(key)) return "unavailable";
    return this.#available.has(key) ? "available" : "unknown";
  }

  /**
   * Claims one-time keys for the devices of `userIds` that have no session (`keys/claim`, sent once,
   * never replayed: a replay burns keys). A device asked for and not answered has no session.
   */
  claim(
    machine: Pick<OlmMachine, "getMissingSessions" | "outgoingRequests" | "markRequestAsSent">,
    http: MatrixHttp,
    userIds: readonly string[],
    signal: AbortSignal,
  ): Promise<void> {
    const run = () => this.#claim(machine, http, userIds, signal);
    const next = this.#claiming.then(run, run);
    this.#claiming = next.catch(() => undefined);
    return next;
  }

  async #claim(
    machine: Pick<OlmMachine, "getMissingSessions" | "outgoingRequests" | "markRequestAsSent">,
    http: MatrixHttp,
    userIds: readonly string[],
    signal: AbortSignal,
  ): Promise<void> {
    signal.throwIfAborted();
    const request = await machine.getMissingSessions(userIds.map(toUserId));
    // A device not asked for has a session by now — one it opened to us, say — even if a claim
    // once found no key for it.
    const asked = request
      ? devicesIn((JSON.parse(request.body) as { one_time_keys?: unknown }).one_time_keys)
      : [];
    const askedKeys = new Set(asked.map(([u, d]) => deviceKey(u, d)));
    const users = new Set(userIds);
    for (const key of this.#unavailable) {
      if (users.has(key.slice(0, key.indexOf("\u0000"))) && !askedKeys.has(key))
        this.#unavailable.delete(key);
    }
    if (!request) return;
    try {
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
