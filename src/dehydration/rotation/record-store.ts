import { z } from "zod";
import type { StateStore } from "../../state/state-store.js";
import type { RotationRecord } from "./rotation-plan.js";

/** Stored values are untrusted (old versions, other tabs, hand edits): validated on every read. */
const storedRecordSchema = z.object({
  version: z.literal(1),
  deviceId: z.string().min(1),
  sinceMs: z.number().finite(),
  uploadedHere: z.boolean(),
});

/**
 * When and which dehydrated device this client last uploaded (or adopted), per user. It says
 * nothing about room keys, so it is kept in the state store whatever its durability: losing it
 * only makes the next start treat the server's device as one waiting for a new login.
 */
export class RotationRecordStore {
  readonly #store: StateStore;
  readonly #key: string;

  constructor(stateStore: StateStore, userId: string) {
    this.#store = stateStore;
    this.#key = `dehydration/rotation/${userId}`;
  }

  /** The record, or `undefined` when there is none or what is stored is not one. */
  async load(): Promise<RotationRecord | undefined> {
    const parsed = storedRecordSchema.safeParse(await this.#store.get<unknown>(this.#key));
    if (!parsed.success) return undefined;
    const { version: _version, ...record } = parsed.data;
    return record;
  }

  async save(record: RotationRecord): Promise<void> {
    await this.#store.set(this.#key, { version: 1, ...record });
  }
}
