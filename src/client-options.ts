import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import type { CryptoEvents } from "./crypto/crypto-events.js";
import type { CryptoStoreOptions } from "./crypto/olm-machine.js";
import type { UiaCallback } from "./crypto/user-interactive-auth.js";
import type { DehydrationModuleEvents } from "./dehydration/dehydration.js";
import type { DrainTuning } from "./dehydration/drain/drain-loop.js";
import type { DeviceListsModuleEvents } from "./device-lists/events.js";
import type { DeviceListsOptions } from "./device-lists/options.js";
import type { WithErrorInfoEvents } from "./errors/error-info.js";
import type { EventSubscriber } from "./events/emitter.js";
import type { Prefixed } from "./events/prefixed.js";
import type { FetchLike, MatrixHttpEvents, RefreshTokenCallback } from "./http/matrix-http.js";
import type { RetryConfig } from "./http/retry-policy.js";
import type { Logger } from "./logger.js";
import type { SharingStrategy } from "./rooms/recipient-plan.js";
import type { RoomsModuleEvents } from "./rooms/rooms.js";
import type { SecretStorageKey } from "./secret-storage/key-holder.js";
import type { StateStore } from "./state/state-store.js";
import type { SyncModuleEvents } from "./sync/sync.js";
import type { Clock } from "./time/clock.js";

/** What `createE2eeClient` needs: the session, and the seams (fetch, clock, stores) an app may inject. */
export interface CreateE2eeClientOptions {
  /** Homeserver base URL, e.g. `https://matrix.example.org`. */
  baseUrl: string;
  /** The logged-in user and device; the access token must belong to them. */
  userId: string;
  deviceId: string;
  accessToken: string;
  fetch?: FetchLike;
  clock?: Clock;
  /** Uniform in [0, 1); drives backoff jitter. */
  random?: () => number;
  logger?: Logger;
  /** A machine the app already has (checked against `userId`/`deviceId`); the app keeps owning it. */
  olmMachine?: OlmMachine;
  /** Where a machine created here keeps its keys (IndexedDB); omit for an in-memory machine. */
  cryptoStore?: CryptoStoreOptions;
  /**
   * For feature modules' own state: drain checkpoints, the dehydrated-device rotation record. The
   * default follows the crypto store, so that state lives as long as the keys it describes: with
   * `cryptoStore`, an IndexedDB database named `${cryptoStore.name}-matrix-e2ee-devices-state`
   * (durability `cryptoStoreDurability`), opened here and closed by `close()`; without it (an
   * in-memory machine, or the app's own `olmMachine`), in memory. In memory, every start looks
   * like a new login to the rotation: it drains and replaces the dehydrated device each time.
   */
  stateStore?: StateStore;
  /**
   * How durable the crypto store is; drain checkpoints are never kept more durably than the room
   * keys they count. Default: `"durable"` with `cryptoStore` (IndexedDB), `"memory"` otherwise.
   */
  cryptoStoreDurability?: "memory" | "durable";
  /** Called on a soft logout to get a new access token (spec "Soft logout"). */
  refreshToken?: RefreshTokenCallback;
  /** Answers user-interactive auth, e.g. for uploading cross-signing keys. */
  uiaCallback?: UiaCallback;
  /**
   * Supplies the unlocked secret-storage key when a dehydration call passes none (the rotation asks
   * at each pass): an app would ask the user for their recovery key, or return the key it unlocked
   * at login. Resolve `undefined` to go without: the dehydration key cached in the crypto store is
   * used then. Every dehydration call also takes `secretStorageKey` directly.
   */
  getSecretStorageKey?: () => Promise<SecretStorageKey | undefined>;
  retry?: Partial<RetryConfig>;
  /** Where to fetch the crypto wasm from, for bundlers that move it. */
  wasmUrl?: URL | string;
  /** Tuning of `client.dehydration`. */
  dehydration?: {
    /**
     * How every drain is paced — loop guards (`limits`), slice and page
     * sizes, pipelining — handed to the drainer whole.
     * Omit for its defaults, tuned for crypto-wasm in a UI thread; an app would set it to give a
     * slow device a longer time budget, or to cap the events one drain imports. A drain call's own
     * `limits` still override these.
     */
    drain?: DrainTuning;
  };
  /** Settings of `client.rooms`. */
  rooms?: {
    /**
     * Which devices get room keys (see `SharingStrategy`); default `"all_devices"`, as
     * matrix-js-sdk. A send's own `strategy` overrides it.
     */
    sharingStrategy?: SharingStrategy;
  };
  /** Tuning of `client.deviceLists`: the rate limit, the failure backoff, MSC2638, send waits. */
  deviceLists?: DeviceListsOptions;
}

/**
 * Codes of the plain `SdkError`s the client itself throws: `invalid_options` (contradictory or
 * missing options) and `client_closed` (a call after `close()`; also the abort reason of the
 * requests it cancels); for a worker client also `crypto_store_in_use` (another worker holds the
 * crypto store) and `worker_failed` (the worker died).
 */
export type ClientErrorCode = "invalid_options" | "client_closed" | "crypto_store_in_use" | "worker_failed";

/**
 * The client's one event stream, every module's events under names that say the module:
 * `http.*` (the transport: `requestRetried`, `softLogout`, `loggedOut`, `tokenRefreshed`,
 * `tokenRefreshFailed`), `crypto.*` (the outgoing-request loop: `requestSent`, `requestFailed`,
 * `loopFailed`, `retryScheduled`, `keysUploaded`, `keysQueried`) and `dehydration.*`,
 * `dehydration.drain.*`, `dehydration.rotation.*`, `sync.*`, `rooms.*` and `deviceLists.*`.
 * Payloads are plain data — an `error` field is an `ErrorInfo`, not the thrown object — and never
 * hold key material or tokens.
 */
export type E2eeClientEvents = WithErrorInfoEvents<
  Prefixed<"http", MatrixHttpEvents> &
    Prefixed<"crypto", CryptoEvents> &
    DehydrationModuleEvents &
    SyncModuleEvents &
    RoomsModuleEvents &
    DeviceListsModuleEvents
>;

/** `client.events`: subscribe with `on`/`once` (each returns its unsubscribe) or `off`. */
export type E2eeClientEventStream = EventSubscriber<E2eeClientEvents>;
