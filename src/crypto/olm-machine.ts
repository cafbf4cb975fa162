import { type DeviceId, OlmMachine, StoreHandle, type UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { SdkError } from "../errors/sdk-error.js";
import { type Logger, silentLogger } from "../logger.js";
import type { CryptoErrorCode } from "./errors.js";
import { machineDeviceId, machineUserId, toDeviceId, toUserId } from "./identifiers.js";
import { loadCryptoWasm } from "./load-wasm.js";

/**
 * Where the machine keeps its keys. IndexedDB only: browsers and Electron renderers. Under Node the
 * only IndexedDB is `fake-indexeddb`, which lives in memory — it is for tests, not durability.
 */
export type CryptoStoreOptions =
  /** Store encrypted with a key derived from `passphrase` by crypto-wasm. */
  | { name: string; passphrase: string }
  /** Store encrypted with a raw 32-byte key the app manages itself. */
  | { name: string; key: Uint8Array };

/** Options of `createOlmMachine`. */
export interface CreateOlmMachineOptions {
  userId: string;
  deviceId: string;
  /** Omit for an in-memory machine whose keys die with it. */
  store?: CryptoStoreOptions;
  /** A machine the app already has; it is checked against `userId`/`deviceId` and returned as is. */
  existingMachine?: OlmMachine;
  /** Where to fetch the wasm from, for bundlers that move it. */
  wasmUrl?: URL | string;
  logger?: Logger;
}

/**
 * Creates (or adopts) the `OlmMachine` for one device. Errors are `SdkError`s whose message and
 * details never contain the passphrase or the store key.
 */
export async function createOlmMachine(options: CreateOlmMachineOptions): Promise<OlmMachine> {
  const logger = options.logger ?? silentLogger;
  await loadCryptoWasm(options.wasmUrl);
  if (options.existingMachine) {
    const machine = options.existingMachine;
    const actual = { userId: machineUserId(machine), deviceId: machineDeviceId(machine) };
    if (actual.userId !== options.userId || actual.deviceId !== options.deviceId) {
      throw new SdkError<CryptoErrorCode>(
        "olm_machine_mismatch",
        "the OlmMachine given belongs to another user or device",
        {
          details: { expected: { userId: options.userId, deviceId: options.deviceId }, actual },
        },
      );
    }
    return machine;
  }

  const userId = toUserId(options.userId);
  let deviceId: DeviceId | undefined;
  try {
    deviceId = toDeviceId(options.deviceId);
    return await openMachine(userId, deviceId, options.store, logger);
  } finally {
    // The machine keeps its own copies of the ids; these were only lent to it.
    userId.free();
    deviceId?.free();
  }
}

async function openMachine(
  userId: UserId,
  deviceId: DeviceId,
  store: CryptoStoreOptions | undefined,
  logger: Logger,
): Promise<OlmMachine> {
  if (!store) {
    logger.debug("creating an in-memory OlmMachine");
    return OlmMachine.initialize(userId, deviceId);
  }

  checkStoreOptions(store);
  logger.debug("opening crypto store", { name: store.name });
  try {
    if ("key" in store) {
      const handle = await StoreHandle.openWithKey(store.name, store.key);
      try {
        return await OlmMachine.initFromStore(userId, deviceId, handle);
      } finally {
        handle.free();
      }
    }
    return await OlmMachine.initialize(userId, deviceId, store.name, store.passphrase);
  } catch (cause) {
    // crypto-wasm's messages ("failed to be decrypted while unpickling", "doesn't match the account")
    // carry no secret; keep them as the cause for diagnosis.
    throw new SdkError<CryptoErrorCode>(
      "crypto_store_open_failed",
      "could not open the crypto store (wrong passphrase or key, or the store belongs to another device)",
      { cause, details: { storeName: store.name } },
    );
  }
}

function checkStoreOptions(store: CryptoStoreOptions): void {
  if (typeof globalThis.indexedDB === "undefined") {
    throw new SdkError<CryptoErrorCode>(
      "indexeddb_unavailable",
      "a persistent crypto store needs IndexedDB (browser or Electron renderer); omit `cryptoStore` for an in-memory machine, or provide IndexedDB in Node (e.g. the `fake-indexeddb` package, in memory only)",
    );
  }
  if (store.name.length === 0) {
    throw new SdkError<CryptoErrorCode>("invalid_crypto_store", "the crypto store name must not be empty");
  }
  if ("key" in store) {
    if (!(store.key instanceof Uint8Array) || store.key.length !== 32) {
      throw new SdkError<CryptoErrorCode>(
        "invalid_crypto_store",
        "the crypto store key must be exactly 32 bytes",
      );
    }
  } else if (typeof store.passphrase !== "string" || store.passphrase.length === 0) {
    throw new SdkError<CryptoErrorCode>(
      "invalid_crypto_store",
      "the crypto store passphrase must be a non-empty string",
    );
  }
}
