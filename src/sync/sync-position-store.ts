import { z } from "zod";
import { noMoreDurableThanCryptoStore } from "../state/durability-cap.js";
import type { StateStore } from "../state/state-store.js";

/**
 * Where the encryption loop stands, kept so a reload goes on from there: the sliding-sync `pos`,
 * the `to_device` cursor (`since`, MSC3885: the client MUST persist it) and, for classic `/sync`,
 * its `since`. Written only after the crypto call for the response that produced them returned,
 * so a crash replays a batch (harmless) rather than skips one.
 *
 * `pos` is only ever the SDK's own connection's (`conn_id` `ENCRYPTION_CONN_ID`): MSC4186 scopes a
 * position to the connection that was handed it, so the app's connection's `pos` (extension mode)
 * sent on the SDK's would be refused (`M_UNKNOWN_POS`; Synapse answers one it cannot parse with
 * 400 `M_UNKNOWN`). The to-device cursor is the device's on every connection and is kept in all
 * modes.
 *
 * Durability rule, as for drain checkpoints: never more durable than the crypto store
 * (`noMoreDurableThanCryptoStore`).
 */
export interface SyncPositions {
  pos: string | undefined;
  toDeviceSince: string | undefined;
  classicSince: string | undefined;
}

const stored = z.object({
  version: z.literal(1),
  pos: z.string().optional(),
  toDeviceSince: z.string().optional(),
  classicSince: z.string().optional(),
});

export const noSyncPositions: SyncPositions = {
  pos: undefined,
  toDeviceSince: undefined,
  classicSince: undefined,
};

/** The positions of one device's encryption loop in the state store. */
export class SyncPositionStore {
  readonly #store: StateStore;
  readonly #key: string;

  constructor(options: {
    stateStore: StateStore;
    userId: string;
    deviceId: string;
    cryptoStoreDurability: "memory" | "durable";
  }) {
    this.#store = noMoreDurableThanCryptoStore(options.stateStore, options.cryptoStoreDurability);
    this.#key = `sync/positions/${options.userId}/${options.deviceId}`;
  }

  /** The stored positions; none when nothing (or something unreadable, then dropped) is stored. */
  async load(): Promise<SyncPositions> {
    const raw = await this.#store.get<unknown>(this.#key);
    if (raw === undefined) return noSyncPositions;
    const parsed = stored.safeParse(raw);
    if (!parsed.success) {
      await this.#store.delete(this.#key);
      return noSyncPositions;
    }
    const { pos, toDeviceSince, classicSince } = parsed.data;
    return { pos, toDeviceSince, classicSince };
  }

  async save(positions: SyncPositions): Promise<void> {
    const value: Record<string, unknown> = { version: 1 };
    for (const [k, v] of Object.entries(positions)) if (v !== undefined) value[k] = v;
    await this.#store.set(this.#key, value);
  }
}
