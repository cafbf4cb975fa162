import { z } from "zod";
import { noMoreDurableThanCryptoStore } from "../../state/durability-cap.js";
import type { StateStore } from "../../state/state-store.js";
import type { DrainResumeState } from "./drain-loop.js";
import type { EventsVariant } from "./pagination.js";

/**
 * Where a drain of a dehydrated device stands, kept beside the crypto store so a network failure,
 * an abort or a reload resumes instead of starting over. What the positions mean, and why a
 * truncated drain rolls back to `trusted`, is the engine's rule (`drain-loop.ts`).
 *
 * Durability rule: a checkpoint must never be more durable than the crypto store holding the room
 * keys it counts (`noMoreDurableThanCryptoStore`): when the crypto store is in memory, checkpoints
 * are kept in memory too (a crash restarts the drain from the start — re-importing is harmless),
 * whatever the state store could offer.
 */
export interface DrainCheckpoint extends DrainResumeState {
  /** The dehydrated device the positions belong to; a checkpoint for another device is dropped. */
  deviceId: string;
  /** The last drain reached an end rule: `position` is where it ended, and is `trusted`. */
  complete: boolean;
  savedAtMs: number;
}

const count = z.number().int().nonnegative();
const position = z.object({
  cursor: z.string().optional(),
  skip: z
    .object({ events: z.number().int().positive(), digest: z.string().regex(/^[0-9a-f]{64}$/) })
    .optional(),
  pages: count,
  events: count,
  roomKeys: count,
});

/**
 * Stored values are untrusted (old versions, other tabs, hand edits): validated on every read.
 * Version 1 checkpoints are dropped, not migrated: they kept the server's cursor for every page of
 * a truncated run, so their cursor may lie past messages never read; the drain starts over.
 */
const storedCheckpointSchema = z.object({
  version: z.literal(2),
  deviceId: z.string().min(1),
  position,
  trusted: position,
  guard: z.object({ events: count, elapsedMs: z.number().nonnegative() }),
  complete: z.boolean(),
  savedAtMs: z.number(),
});

type StoredPosition = z.infer<typeof position>;

/** Drops the keys zod leaves `undefined`, so a stored position reads back as it was written. */
function fromStored(stored: StoredPosition): DrainResumeState["position"] {
  const { cursor, skip, ...counts } = stored;
  return { ...counts, cursor, ...(skip === undefined ? {} : { skip }) };
}

function toStored(position: DrainResumeState["position"]): StoredPosition {
  const { cursor, skip, pages, events, roomKeys } = position;
  return { pages, events, roomKeys, ...(cursor === undefined ? {} : { cursor }), ...(skip ? { skip } : {}) };
}

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
    this.#store = noMoreDurableThanCryptoStore(options.stateStore, options.cryptoStoreDurability);
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
    const { deviceId, guard, complete, savedAtMs } = parsed.data;
    return {
      deviceId,
      position: fromStored(parsed.data.position),
      trusted: fromStored(parsed.data.trusted),
      guard,
      complete,
      savedAtMs,
    };
  }

  async save(checkpoint: DrainCheckpoint): Promise<void> {
    const { deviceId, guard, complete, savedAtMs } = checkpoint;
    await this.#store.set(this.#key, {
      version: 2,
      deviceId,
      position: toStored(checkpoint.position),
      trusted: toStored(checkpoint.trusted),
      guard: { events: guard.events, elapsedMs: guard.elapsedMs },
      complete,
      savedAtMs,
    });
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
