import { z } from "zod";
import { MemoryStateStore } from "../state/memory-state-store.js";
import type { StateStore } from "../state/state-store.js";

/**
 * Where the encryption loop stands, kept so a reload goes on from there: the sliding-sync `pos`,
 * the `to_device` cursor (`since`, MSC3885: the client MUST persist it) and, for classic `/sync`,
 * its `since`. Written only after the crypto call for the response that produced them returned,
 * so a crash replays a batch (harmless) rather than skips one.
 *
 * Durability rule, as for drain checkpoints: never more durable than the crypto store. If the
 * crypto store dies with the process but the cursor survived, the next session would acknowledge
 * (delete on the server) to-device messages whose keys died with it.
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
  readonly durability: "memory" | "durable";
  readonly #store: StateStore;
  readonly #key: string;

  constructor(options: {
    stateStore: StateStore;
    userId: string;
    deviceId: string;
    cryptoStoreDurability: "memory" | "durable";
  }) {
    const capped = options.cryptoStoreDurability === "memory" && options.stateStore.durability === "durable";
    this.#store = capped ? new MemoryStateStore() : options.stateStore;
    this.durability = this.#store.durability;
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
