import { DeviceLists, type OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import { SdkError } from "../errors/sdk-error.js";
import type { TypedEmitter } from "../events/emitter.js";
import type { CryptoEvents } from "./crypto-events.js";
import type { CryptoErrorCode } from "./errors.js";
import { toUserId } from "./identifiers.js";

/** What a refresh needs of the outgoing-request loop (`OutgoingRequestLoop` fits). */
export interface KeyQueryLoop {
  run(): Promise<void>;
  readonly stopped: boolean;
  readonly events: TypedEmitter<CryptoEvents>;
}

/** The machine methods a refresh uses. */
export type DeviceListMachine = Pick<OlmMachine, "updateTrackedUsers" | "receiveSyncChangesMsc4186">;

/**
 * Makes the machine query `userIds`' keys again, through the outgoing-request loop, and resolves
 * once that query was answered and handed back to the machine.
 *
 * The machine batches and deduplicates its own `keys/query` (the SDK never opens a
 * second query path), and crypto-wasm 18.9 has no call that flags one user as outdated: only
 * `markAllTrackedUsersAsDirty` (every user) and a sync's `device_lists.changed`. So the users are
 * reported as changed the way a sync would, through `receiveSyncChangesMsc4186` with no to-device
 * events and an empty key-count map — under MSC4186 an absent count means "unchanged", so this
 * cannot trigger a one-time-key upload (the v2 call would read it as zero) — and the loop sends
 * the query the machine then produces.
 *
 * Rejects with `key_query_failed` when a key query failed in that run, none was sent, or the loop
 * is stopped: the machine's view of these users may then be stale, and a caller judging a device
 * by it must not pretend otherwise.
 */
export async function refreshDeviceLists(
  machine: DeviceListMachine,
  loop: KeyQueryLoop,
  userIds: readonly string[],
  signal?: AbortSignal,
): Promise<void> {
  signal?.throwIfAborted();
  if (loop.stopped) throw queryFailed("the outgoing-request loop is stopped");
  let sent = 0;
  let failure: { error: unknown } | undefined;
  const offSent = loop.events.on("requestSent", ({ kind }) => {
    if (kind === "KeysQuery") sent++;
  });
  const offFailed = loop.events.on("requestFailed", ({ kind, error }) => {
    if (kind === "KeysQuery") failure ??= { error };
  });
  try {
    // A user the machine does not track yet would be ignored by a device-list change; tracking
    // flags it for a query by itself. `updateTrackedUsers` and the `DeviceLists` constructor take
    // over the ids they are given; `receiveSyncChangesMsc4186` only borrows the `DeviceLists`, so
    // it is freed here once the call settled.
    await machine.updateTrackedUsers(userIds.map(toUserId));
    const changed = new DeviceLists(userIds.map(toUserId));
    try {
      await machine.receiveSyncChangesMsc4186("[]", changed, new Map());
    } finally {
      changed.free();
    }
    await loop.run();
  } finally {
    offSent();
    offFailed();
  }
  signal?.throwIfAborted();
  if (failure !== undefined) {
    throw queryFailed("the key query failed; the device list may be stale", failure.error);
  }
  if (sent === 0) throw queryFailed("no key query reached the server (the loop stopped or is failing)");
}

function queryFailed(message: string, cause?: unknown): SdkError<CryptoErrorCode> {
  return new SdkError<CryptoErrorCode>("key_query_failed", message, cause === undefined ? {} : { cause });
}
