import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import type {
  ClientErrorCode,
  CreateE2eeClientOptions,
  E2eeClientEventStream,
  E2eeClientEvents,
} from "./client-options.js";
import { CrossSigning, type CrossSigningApi } from "./cross-signing/cross-signing.js";
import { createOlmMachine } from "./crypto/olm-machine.js";
import { OutgoingRequestLoop } from "./crypto/outgoing-requests.js";
import {
  Dehydration,
  type DehydrationApi,
  type DehydrationInternals,
  dehydrationInternals,
} from "./dehydration/dehydration.js";
import { DeviceLists, type DeviceListsApi } from "./device-lists/device-lists.js";
import { type DeviceListsSettings, deviceListsSettings } from "./device-lists/options.js";
import { withErrorInfo } from "./errors/error-info.js";
import { SdkError } from "./errors/sdk-error.js";
import { TypedEmitter } from "./events/emitter.js";
import { forwardPrefixed } from "./events/prefixed.js";
import { createMatrixHttp, type MatrixHttpClient } from "./http/matrix-http.js";
import { type Logger, silentLogger } from "./logger.js";
import { SHARING_STRATEGIES } from "./rooms/recipient-plan.js";
import { Rooms, type RoomsApi } from "./rooms/rooms.js";
import { createHttpAccountData } from "./secret-storage/account-data-http.js";
import type { SecretStorageKey } from "./secret-storage/key-holder.js";
import {
  type CreatedSecretStorageKey,
  type CreateSecretStorageKeyOptions,
  SecretStorage,
} from "./secret-storage/secret-storage.js";
import { IndexedDbStateStore } from "./state/indexeddb-state-store.js";
import { MemoryStateStore } from "./state/memory-state-store.js";
import type { StateStore } from "./state/state-store.js";
import { Sync, type SyncApi } from "./sync/sync.js";
import { systemClock } from "./time/clock.js";

/**
 * `client.secretStorage`: server-side secret storage (Client-Server spec, "Secrets"), compatible
 * with matrix-js-sdk's. Keys it returns print only their id; wipe one with `key.key.fill(0)`.
 */
export interface SecretStorageApi {
  /** The account's default key id (`m.secret_storage.default_key`), if any. */
  getDefaultKeyId(): Promise<string | undefined>;
  /** Creates a key (random, or from a passphrase) and by default makes it the default. */
  createKey(options?: CreateSecretStorageKeyOptions): Promise<CreatedSecretStorageKey>;
  /** Whether `key` matches its description (`key.keyId`, or `keyId`, default: the default key). */
  checkKey(key: SecretStorageKey | Uint8Array, keyId?: string): Promise<boolean>;
  /** The key a recovery key stands for, checked against its description (`bad_key` otherwise). */
  unlockWithRecoveryKey(recoveryKey: string, keyId?: string): Promise<SecretStorageKey>;
  /** The key derived from a passphrase with its description's `m.pbkdf2` parameters, checked. */
  unlockWithPassphrase(passphrase: string, keyId?: string): Promise<SecretStorageKey>;
  /** Whether the secret `name` is stored under `keyId` (default: the default key). */
  isStored(name: string, keyId?: string): Promise<boolean>;
}

/**
 * What an app creates once per logged-in device: one object per capability and one event stream.
 * Every call takes and returns plain data (no class instances of crypto-wasm or of this SDK), so
 * the client can live behind a thread boundary; callbacks in the options are the only functions,
 * and `olmMachine` is the one documented exception.
 */
export interface E2eeClient {
  readonly userId: string;
  readonly deviceId: string;
  /** Every module's events (`http.*`, `crypto.*`, `dehydration.*`): the one place to subscribe. */
  readonly events: E2eeClientEventStream;
  /** The account's cross-signing identity: bootstrap, restore from a recovery key or passphrase. */
  readonly crossSigning: CrossSigningApi;
  /** Secret storage on the server: keys, recovery keys, passphrases. */
  readonly secretStorage: SecretStorageApi;
  /** The dehydrated device (MSC3814): probe, drain, rotation, replace, delete, status. */
  readonly dehydration: DehydrationApi;
  /** The encryption loop: to-device events, key counts and device lists into the crypto layer. */
  readonly sync: SyncApi;
  /** Encrypted room messages: the recipient plan, sending, decrypting with reasons. */
  readonly rooms: RoomsApi;
  /** How current each user's device list is, and resyncs (MSC2638 where the server has it). */
  readonly deviceLists: DeviceListsApi;
  /**
   * The escape hatch: crypto-wasm's `OlmMachine`, for what this SDK does not wrap (verification,
   * key backup). Not plain data. Do not `close()` it; the client does (when it created it). A
   * request it queues is sent by `processOutgoingRequests()`.
   */
  readonly olmMachine: OlmMachine;
  /**
   * Sends what the machine wants sent. Failures are `crypto.requestFailed` events and retried, not
   * rejections; only a call after `close()` rejects (`client_closed`).
   */
  processOutgoingRequests(): Promise<void>;
  /**
   * Stops the loops, the rotation and any drain (it rejects with `DrainError` `aborted`, its
   * checkpoint kept), cancels requests in flight, and then closes the machine if it was created
   * here and the default state store. Later calls reject with `client_closed` (`stop()` calls and
   * `close()` itself resolve).
   */
  close(): Promise<void>;
}

/**
 * Creates the client for one logged-in device: the transport, the `OlmMachine` (created here, or
 * the app's own checked against `userId`/`deviceId`), and the capabilities wired to both. No
 * request is sent until the app asks (`processOutgoingRequests` or a capability's call). Fails with
 * `invalid_options` on contradictory options, or the machine's typed error.
 */
export async function createE2eeClient(options: CreateE2eeClientOptions): Promise<E2eeClient> {
  if (options.olmMachine !== undefined && options.cryptoStore !== undefined) {
    throw new SdkError<ClientErrorCode>("invalid_options", "pass either olmMachine or cryptoStore, not both");
  }
  if (typeof options.accessToken !== "string" || options.accessToken === "") {
    throw new SdkError<ClientErrorCode>("invalid_options", "an access token is required");
  }
  const strategy = options.rooms?.sharingStrategy;
  if (strategy !== undefined && !SHARING_STRATEGIES.includes(strategy)) {
    throw new SdkError<ClientErrorCode>(
      "invalid_options",
      `rooms.sharingStrategy must be one of ${SHARING_STRATEGIES.join(", ")}`,
    );
  }
  const deviceLists = deviceListsSettings(options.deviceLists);
  if (!deviceLists.ok) throw new SdkError<ClientErrorCode>("invalid_options", deviceLists.problem);
  const logger = options.logger ?? silentLogger;
  const http = createMatrixHttp({
    baseUrl: options.baseUrl,
    accessToken: options.accessToken,
    fetch: options.fetch,
    clock: options.clock,
    random: options.random,
    logger,
    retry: options.retry,
    refreshToken: options.refreshToken,
  });
  const machine = await createOlmMachine({
    userId: options.userId,
    deviceId: options.deviceId,
    store: options.cryptoStore,
    existingMachine: options.olmMachine,
    wasmUrl: options.wasmUrl,
    logger,
  });
  const durability = cryptoStoreDurability(options);
  let stateStore: StateStore;
  try {
    stateStore = await defaultStateStore(options, durability);
  } catch (error) {
    if (options.olmMachine === undefined) machine.close();
    throw error;
  }
  return new Client(options, {
    http,
    machine,
    logger,
    stateStore,
    durability,
    deviceLists: deviceLists.settings,
  });
}

/** The database the default state store of a client with `cryptoStore` lives in. */
export function defaultStateStoreName(cryptoStoreName: string): string {
  return `${cryptoStoreName}-matrix-e2ee-devices-state`;
}

function cryptoStoreDurability(options: CreateE2eeClientOptions): "memory" | "durable" {
  return options.cryptoStoreDurability ?? (options.cryptoStore ? "durable" : "memory");
}

/**
 * The app's store, else one as durable as the crypto store: the rotation record and drain
 * checkpoints describe what the crypto store holds, and must survive exactly when it does (a
 * rotation that forgets on reload replaces the device on every start).
 */
async function defaultStateStore(
  options: CreateE2eeClientOptions,
  durability: "memory" | "durable",
): Promise<StateStore> {
  if (options.stateStore !== undefined) return options.stateStore;
  if (options.cryptoStore === undefined) return new MemoryStateStore();
  return IndexedDbStateStore.open(defaultStateStoreName(options.cryptoStore.name), { durability });
}

/** The parts behind a client, for this SDK's own tests and tools; not public API. */
export interface ClientInternals extends DehydrationInternals {
  http: MatrixHttpClient;
  outgoingRequests: OutgoingRequestLoop;
  stateStore: StateStore;
  secretStorage: SecretStorage;
}

/** Reads the parts of a client made by `createE2eeClient`; assigned by the class's static block. */
export let clientInternals: (client: E2eeClient) => ClientInternals;

/** The facade: builds each capability from the shared parts and forwards their events. Wiring only. */
class Client implements E2eeClient {
  readonly userId: string;
  readonly deviceId: string;
  readonly events: TypedEmitter<E2eeClientEvents>;
  readonly crossSigning: CrossSigning;
  readonly secretStorage: SecretStorageApi;
  readonly dehydration: Dehydration;
  readonly sync: Sync;
  readonly rooms: Rooms;
  readonly deviceLists: DeviceLists;
  readonly olmMachine: OlmMachine;
  readonly #secretStorage: SecretStorage;
  readonly #outgoingRequests: OutgoingRequestLoop;
  readonly #ownsMachine: boolean;
  /** The default IndexedDB state store, opened by `createE2eeClient`: closed with the client. */
  readonly #ownedStateStore: IndexedDbStateStore | undefined;
  readonly #http: MatrixHttpClient;
  readonly #stateStore: StateStore;
  readonly #closing = new AbortController();
  #closed: Promise<void> | undefined;

  static {
    clientInternals = (client) => {
      if (!(client instanceof Client)) throw new TypeError("not a client made by createE2eeClient");
      return {
        ...dehydrationInternals(client.dehydration),
        http: client.#http,
        outgoingRequests: client.#outgoingRequests,
        stateStore: client.#stateStore,
        secretStorage: client.#secretStorage,
      };
    };
  }

  constructor(
    options: CreateE2eeClientOptions,
    parts: {
      http: MatrixHttpClient;
      machine: OlmMachine;
      logger: Logger;
      stateStore: StateStore;
      durability: "memory" | "durable";
      deviceLists: DeviceListsSettings;
    },
  ) {
    const { http, machine, logger, stateStore } = parts;
    this.userId = options.userId;
    this.deviceId = options.deviceId;
    this.olmMachine = machine;
    this.#http = http;
    this.#stateStore = stateStore;
    this.#ownsMachine = options.olmMachine === undefined;
    this.#ownedStateStore =
      options.stateStore === undefined && stateStore instanceof IndexedDbStateStore ? stateStore : undefined;
    this.events = new TypedEmitter<E2eeClientEvents>(logger);
    // Errors in payloads become plain `ErrorInfo` at this boundary: payloads stay plain data.
    const emit = (event: string, payload: unknown) =>
      this.events.emit(event as keyof E2eeClientEvents, withErrorInfo(payload) as never);
    const assertOpen = () => this.#assertOpen();

    this.#secretStorage = new SecretStorage(
      createHttpAccountData(http, options.userId, { signal: this.#closing.signal }),
    );
    this.secretStorage = openOnly(this.#secretStorage, assertOpen);
    this.#outgoingRequests = new OutgoingRequestLoop({
      machine,
      http,
      clock: options.clock ?? systemClock,
      random: options.random,
      logger,
    });
    this.dehydration = new Dehydration({
      machine,
      http,
      outgoingRequests: this.#outgoingRequests,
      secretStorage: this.#secretStorage,
      stateStore,
      cryptoStoreDurability: parts.durability,
      userId: options.userId,
      getSecretStorageKey: options.getSecretStorageKey,
      tuning: options.dehydration?.drain,
      clock: options.clock,
      logger,
      signal: this.#closing.signal,
      assertOpen,
      emit,
    });
    this.sync = new Sync({
      machine,
      http,
      baseUrl: options.baseUrl,
      userId: options.userId,
      deviceId: options.deviceId,
      stateStore,
      cryptoStoreDurability: parts.durability,
      runOutgoingRequests: () => this.#outgoingRequests.run(),
      clock: options.clock ?? systemClock,
      random: options.random ?? Math.random,
      logger,
      signal: this.#closing.signal,
      emit,
    });
    const deviceLists = new DeviceLists({
      machine,
      keyQueries: this.#outgoingRequests,
      http,
      userId: options.userId,
      deviceId: options.deviceId,
      settings: parts.deviceLists,
      clock: options.clock ?? systemClock,
      logger,
      signal: this.#closing.signal,
      assertOpen,
      emit,
    });
    this.deviceLists = deviceLists;
    const sendTimeoutMs = parts.deviceLists.sendTimeoutMs;
    this.rooms = new Rooms({
      machine,
      http,
      userId: options.userId,
      deviceId: options.deviceId,
      strategy: options.rooms?.sharingStrategy,
      runOutgoingRequests: () => this.#outgoingRequests.run(),
      logger,
      signal: this.#closing.signal,
      assertOpen,
      emit,
      ensureFresh: (userIds, signal) =>
        deviceLists.ensureFresh(userIds, { timeoutMs: sendTimeoutMs, signal }),
      // A message from a device the list does not hold is a sign the list is stale.
      decrypted: (event, result) => deviceLists.roomEventDecrypted(event, result),
      unreachable: (userId) => deviceLists.trust(userId).state === "failed",
    });
    this.crossSigning = new CrossSigning({
      machine,
      http,
      userId: options.userId,
      secretStorage: this.#secretStorage,
      runOutgoingRequests: () => this.#outgoingRequests.run(),
      uiaCallback: options.uiaCallback,
      identityReset: this.dehydration,
      signal: (caller) => (caller ? AbortSignal.any([caller, this.#closing.signal]) : this.#closing.signal),
      assertOpen: () => this.#assertOpen(),
    });
    forwardPrefixed(http.events, "http", emit);
    forwardPrefixed(this.#outgoingRequests.events, "crypto", emit);
    // What the other modules saw, fed to the device-list detectors: the modules stay unaware of
    // each other.
    this.events.on("crypto.keysQueried", ({ users, failedServers }) =>
      deviceLists.keysQueried(users, failedServers),
    );
    this.events.on("sync.deviceListsChanged", ({ changed, left }) =>
      deviceLists.deviceListsChanged(changed, left),
    );
    this.events.on("sync.positionLost", () => deviceLists.positionLost());
    this.events.on("sync.toDevice", ({ events }) => deviceLists.toDeviceReceived(events));
    this.events.on("rooms.decrypted", ({ result }) => deviceLists.roomEventDecrypted(undefined, result));
  }

  async processOutgoingRequests(): Promise<void> {
    this.#assertOpen();
    return this.#outgoingRequests.run();
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      // Aborts every request and drain in flight at once; each part is then awaited until it has
      // let go of the machine (a drain frees its rehydrated device first).
      this.#closing.abort(new SdkError<ClientErrorCode>("client_closed", "the client was closed"));
      await this.sync.close();
      await this.rooms.close();
      await this.dehydration.close();
      await this.#outgoingRequests.stop();
      // After the loop stopped (a resync in flight waits on it), before the machine closes.
      await this.deviceLists.close();
      if (this.#ownsMachine) this.olmMachine.close();
      await this.#ownedStateStore?.close();
    })();
    return this.#closed;
  }

  #assertOpen(): void {
    if (this.#closed) throw new SdkError<ClientErrorCode>("client_closed", "the client was closed");
  }
}

/** The face of secret storage: every call checks the client is open first. */
function openOnly(storage: SecretStorage, assertOpen: () => void): SecretStorageApi {
  const open =
    <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      assertOpen();
      return call(...args);
    };
  return {
    getDefaultKeyId: open(() => storage.getDefaultKeyId()),
    createKey: open((options?: CreateSecretStorageKeyOptions) => storage.createKey(options)),
    checkKey: open((key: SecretStorageKey | Uint8Array, keyId?: string) =>
      key instanceof Uint8Array
        ? storage.checkKey(key, keyId)
        : storage.checkKey(key.key, keyId ?? key.keyId),
    ),
    unlockWithRecoveryKey: open((recoveryKey: string, keyId?: string) =>
      storage.unlockWithRecoveryKey(recoveryKey, keyId),
    ),
    unlockWithPassphrase: open((passphrase: string, keyId?: string) =>
      storage.unlockWithPassphrase(passphrase, keyId),
    ),
    isStored: open((name: string, keyId?: string) => storage.isStored(name, keyId)),
  };
}
