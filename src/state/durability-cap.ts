import { MemoryStateStore } from "./memory-state-store.js";
import type { StateStore } from "./state-store.js";

/**
 * The store for state that must never be more durable than the crypto store it describes (drain
 * checkpoints, sync positions): `stateStore` itself, or a store in memory when the crypto store
 * lives in memory and the state store would outlive it. Kept durably while the keys die with the
 * process, such state would let the next session skip what it no longer holds: a checkpoint would
 * skip pages whose room keys are gone, a to-device cursor would acknowledge (have the server
 * delete) messages whose keys are gone.
 */
export function noMoreDurableThanCryptoStore(
  stateStore: StateStore,
  cryptoStoreDurability: "memory" | "durable",
): StateStore {
  const capped = cryptoStoreDurability === "memory" && stateStore.durability === "durable";
  return capped ? new MemoryStateStore() : stateStore;
}
