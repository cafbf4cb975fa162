import { z } from "zod";
import { MemoryStateStore } from "../state/memory-state-store.js";
import type { StateStore } from "../state/state-store.js";
import type { EventsVariant } from "./pagination.js";

/**
 * Where a drain of a dehydrated device stands, kept beside the crypto store so a network failure,
 * an abort or a reload resumes instead of starting over.
 *
 * Durability rule: a checkpoint must never be more durable than the crypto store holding the room
 * keys it counts. If the keys die with the process (in-memory machine) but the checkpoint survived
 * in IndexedDB, the next session would skip pages whose keys no longer exist. So when the crypto
 * store is in memory, checkpoints are kept in memory too (a crash restarts the drain from the
 * start — re-importing is harmless), whatever the state store could offer.
 */
export interface DrainCheckpoint {
  /** The dehydrated device the cursor belongs to; a checkpoint for another device is dropped. */
  deviceId: string;
  /** The cursor to request next; `undefined` = the first page. */
  cursor: string | undefined;
  /** The last page was reached (an end rule matched): the device is drained up to `cursor`. */
  complete: boolean;
  pages: number;
  events: number;
  roomKeys: number;
  savedAtMs: number;
}

const count = z.number().int().nonnegative();

/** Stored values are untrusted (old versions, other tabs, hand edits): validated on every read. */
const storedCheckpointSchema = z.object({
  version: z.literal(1),
  deviceId: z.string().min(1),
  cursor: z.string().optional(),
  complete: z.boolean(),
  pages: count,
  events: count,
  roomKeys: count,
  savedAtMs: z.number(),
});

const storedVariantSchema = z.enum(["get", "post"]);

export interface DrainCheckpointStoreOptions {
  stateStore: StateStore;
  /** The checkpoint is per user (a state store may be shared by accounts). */
  userId: string;
  /** How durable the crypto store holding the room keys is. */
  cryptoStoreDurability: "memory" | "durable";
}

/**
 * The drain checkpoint and the remembered events variant of one user, in the state store (the
 * checkpoint in memory instead when the crypto store is in memory: see above).
 */
export class DrainCheckpointStore {
  /** What this store actually gives: never more than the crypto store. */
  readonly durability: "memory" | "durable";
  readonly #store: StateStore;
  readonly #variantStore: StateStore;
  readonly #key: string;
  readonly #variantKey: string;

  constructor(options: DrainCheckpointStoreOptions) {
    const capped = options.cryptoStoreDurability === "memory" && options.stateStore.durability === "durable";
    this.#store = capped ? new MemoryStateStore() : options.stateStore;
    this.durability = this.#store.durability;
    // Which wire variant the server speaks says nothing about keys: it may outlive the crypto store.
    this.#variantStore = options.stateStore;
    this.#key = `dehydration/drain-checkpoint/${options.userId}`;
    this.#variantKey = `dehydration/events-variant/${options.userId}`;
  }

  /** The checkpoint, or `undefined` when there is none or what is stored is not one (then dropped). */
  async load(): Promise<DrainCheckpoint | undefined> {
    const raw = await this.#store.get<unknown>(this.#key);
    if (raw === undefined) return undefined;
    const parsed = storedCheckpointSchema.safeParse(raw);
    if (!parsed.success) {
      await this.#store.delete(this.#key);
      return undefined;
    }
    const { version: _version, ...checkpoint } = parsed.data;
    return { ...checkpoint, cursor: checkpoint.cursor };
  }

  async save(checkpoint: DrainCheckpoint): Promise<void> {
    const { cursor, ...rest } = checkpoint;
    await this.#store.set(this.#key, { version: 1, ...rest, ...(cursor === undefined ? {} : { cursor }) });
  }

  async clear(): Promise<void> {
    await this.#store.delete(this.#key);
  }

  /** The events variant remembered for this user's server, if any (see `pagination.ts`). */
  async loadVariant(): Promise<EventsVariant | undefined> {
    const parsed = storedVariantSchema.safeParse(await this.#variantStore.get<unknown>(this.#variantKey));
    return parsed.success ? parsed.data : undefined;
  }

  async saveVariant(variant: EventsVariant): Promise<void> {
    await this.#variantStore.set(this.#variantKey, variant);
  }
}
