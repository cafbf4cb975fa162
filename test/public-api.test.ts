import { describe, expect, it } from "vitest";
import * as advanced from "../src/advanced.js";
import * as root from "../src/index.js";
import * as testing from "../src/testing/index.js";
import * as workerBrowser from "../src/worker/browser.js";
import * as workerNode from "../src/worker/node.js";

/**
 * The runtime names each public entry point exports (types leave no trace at runtime). A new
 * export, or a lost one, fails here: changing the public API is a deliberate edit of these lists.
 */

const names = (module: object) => Object.keys(module).sort();

describe("the public entry points", () => {
  it("matrix-e2ee-devices exports the client, the error classes with their guards, the stores and the seams", () => {
    expect(names(root)).toEqual([
      "AbortError",
      "DehydrationError",
      "DrainError",
      "IndexedDbStateStore",
      "MalformedResponseError",
      "MatrixApiError",
      "MemoryStateStore",
      "NetworkError",
      "RoomError",
      "SdkError",
      "SecretStorageError",
      "StateStoreError",
      "TimeoutError",
      "UserInteractiveAuthError",
      "createE2eeClient",
      "defaultStateStoreName",
      "isAbortError",
      "isDehydrationError",
      "isDrainError",
      "isMalformedResponseError",
      "isMatrixApiError",
      "isNetworkError",
      "isRoomError",
      "isSdkError",
      "isSecretStorageError",
      "isStateStoreError",
      "isTimeoutError",
      "isUserInteractiveAuthError",
      "silentLogger",
      "systemClock",
    ]);
  });

  it("matrix-e2ee-devices/advanced exports the wire names, the defaults, the recovery-key codec and the wasm loader", () => {
    expect(names(advanced)).toEqual([
      "CROSS_SIGNING_SECRET_NAMES",
      "DEFAULT_DEHYDRATED_DEVICE_DISPLAY_NAME",
      "DEHYDRATION_KEY_SECRET_NAMES",
      "decodeRecoveryKey",
      "defaultPaginationLimits",
      "defaultRetryConfig",
      "defaultRotateEveryMs",
      "encodeRecoveryKey",
      "loadCryptoWasm",
      "secretStorageKey",
    ]);
  });

  it("matrix-e2ee-devices/worker exports one function, the same name under node and in browsers", () => {
    expect(names(workerNode)).toEqual(["createE2eeWorkerClient"]);
    expect(names(workerBrowser)).toEqual(["createE2eeWorkerClient"]);
  });

  it("matrix-e2ee-devices/testing exports the mock homeserver, its clock, profiles and route helpers", () => {
    expect(names(testing)).toEqual([
      "DEHYDRATED_DEVICE_PATH",
      "ManualClock",
      "MatrixError",
      "MockHomeserver",
      "SLIDING_SYNC_PATH",
      "UiaRequiredError",
      "canonicalJson",
      "clientRoute",
      "createMockHomeserver",
      "currentSyncPosition",
      "defaultFaultSettings",
      "defaultProfileName",
      "dehydrationFlagsByProfile",
      "e2eeFlagsByProfile",
      "formatSyncToken",
      "isProfileName",
      "jsonObjectBody",
      "parseBody",
      "parseSyncToken",
      "profiles",
      "requireUia",
      "resolveProfile",
      "startMockServer",
      "userVerificationFlows",
    ]);
  });

  it("keeps the transport, single-endpoint helpers and module classes out of the root entry point", () => {
    const internal = [
      "createMatrixHttp",
      "matrixPath",
      "sendOutgoingRequest",
      "orUndefinedOn",
      "TypedEmitter",
      "DEHYDRATED_DEVICE_PATH",
      "defaultRetryConfig",
      "bootstrapCrossSigning",
      "loadCryptoWasm",
      "claimMissingSessions",
      "DehydrationManager",
    ];
    const exported = new Set(Object.keys(root));
    expect(internal.filter((name) => exported.has(name))).toEqual([]);
    for (const name of internal) expect(name in root, name).toBe(false);
  });
});
