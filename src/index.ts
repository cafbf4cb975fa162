/**
 * The public API of `matrix-e2ee-devices`: named exports only, chosen on purpose. Pure cores
 * (pagination planner, rotation plan, device validation, retry policy), wire schemas and
 * single-endpoint helpers stay internal; apps use the facade (`createE2eeClient`) or the classes
 * it wires, and the types their options, results and events name. The mock homeserver is the
 * separate `matrix-e2ee-devices/testing` entry point.
 */
export {
  type ClientBootstrapCrossSigningOptions,
  type ClientBootstrapCrossSigningResult,
  type ClientErrorCode,
  type CreateE2eeClientOptions,
  createE2eeClient,
  defaultStateStoreName,
  type E2eeClient,
  type E2eeClientEvents,
  type RestoreFromRecoveryKeyOptions,
  type RestoreFromRecoveryKeyResult,
} from "./client.js";
export { claimMissingSessions } from "./crypto/claim-sessions.js";
export {
  type BootstrapCrossSigningOptions,
  bootstrapCrossSigning,
  type CrossSigningKeyStatus,
  getCrossSigningStatus,
  isDeviceCrossSignedByOwner,
} from "./crypto/cross-signing.js";
export type { CryptoEvents } from "./crypto/crypto-events.js";
export type { CryptoErrorCode } from "./crypto/errors.js";
export { loadCryptoWasm } from "./crypto/load-wasm.js";
export {
  type CreateOlmMachineOptions,
  type CryptoStoreOptions,
  createOlmMachine,
} from "./crypto/olm-machine.js";
export { OutgoingRequestLoop, type OutgoingRequestLoopOptions } from "./crypto/outgoing-requests.js";
export { type KeyQueryLoop, refreshDeviceLists } from "./crypto/refresh-device-lists.js";
export type { OutgoingRequest, OutgoingRequestKind } from "./crypto/request-endpoints.js";
export { type RequestMachine, sendOutgoingRequest } from "./crypto/send-outgoing-request.js";
export {
  type AuthDict,
  type UiaCallback,
  type UiaChallenge,
  type UiaOptions,
  withUserInteractiveAuth,
} from "./crypto/user-interactive-auth.js";
export {
  type DehydratedDeviceStatus,
  type DehydrationCallOptions,
  DehydrationManager,
  type DehydrationManagerOptions,
  type IdentityResetOutcome,
  type RehydrateOptions,
} from "./dehydration/device/dehydration-manager.js";
export type { DehydratedDeviceRejection } from "./dehydration/device/device-validation.js";
export {
  DehydrationError,
  type DehydrationErrorCode,
  isDehydrationError,
} from "./dehydration/device/errors.js";
export type { DehydrationEvents } from "./dehydration/device/events.js";
export {
  DEFAULT_DEHYDRATED_DEVICE_DISPLAY_NAME,
  DEHYDRATED_DEVICE_PATH,
  DEHYDRATION_KEY_SECRET_NAMES,
} from "./dehydration/device/names.js";
export type {
  ReceivedRoomKey,
  RehydratedDevice,
  RehydratedDeviceErrorCode,
} from "./dehydration/device/rehydrated-device.js";
export type { DehydratedDeviceInfo } from "./dehydration/device/wire-schemas.js";
export type { DrainCheckpoint, DrainCheckpointStore } from "./dehydration/drain/checkpoint-store.js";
export type {
  DrainCounts,
  DrainGuardState,
  DrainPage,
  DrainPageReport,
  DrainPageRequest,
  DrainPageSource,
  DrainPosition,
  DrainResumeState,
  DrainRunResult,
  DrainTuning,
} from "./dehydration/drain/drain-loop.js";
export {
  DehydratedDeviceDrainer,
  type DehydratedDeviceDrainerOptions,
  type DrainableDevice,
  type DrainCallOptions,
  type DrainOutcome,
  type DrainRehydrator,
} from "./dehydration/drain/drainer.js";
export { DrainError, type DrainErrorCode, isDrainError } from "./dehydration/drain/errors.js";
export type { DrainEvents } from "./dehydration/drain/events.js";
export {
  defaultPaginationLimits,
  type EventsVariant,
  type PaginationEndReason,
  type PaginationLimits,
  type PaginationTruncationReason,
} from "./dehydration/drain/pagination.js";
export type {
  DehydratedDeviceResetOutcome,
  StaleDehydratedDeviceReason,
} from "./dehydration/identity-reset.js";
export {
  DehydratedDeviceRotation,
  type DehydratedDeviceRotationOptions,
  type ReplaceReason,
  type RotationDrainer,
  type RotationErrorCode,
  type RotationEvents,
  type RotationManager,
  type RotationPassResult,
  type RotationStartOptions,
} from "./dehydration/rotation/rotation.js";
export { defaultRotateEveryMs, type RotationRecord } from "./dehydration/rotation/rotation-plan.js";
export { AbortError, isAbortError } from "./errors/abort-error.js";
export {
  type FieldIssue,
  isMalformedResponseError,
  MalformedResponseError,
} from "./errors/malformed-response-error.js";
export {
  isMatrixApiError,
  MatrixApiError,
  type MatrixApiErrorInit,
  type MatrixApiErrorKind,
} from "./errors/matrix-api-error.js";
export { isNetworkError, NetworkError } from "./errors/network-error.js";
export { isSdkError, SdkError, type SdkErrorOptions } from "./errors/sdk-error.js";
export { isTimeoutError, TimeoutError } from "./errors/timeout-error.js";
export {
  isUserInteractiveAuthError,
  UserInteractiveAuthError,
  type UserInteractiveAuthErrorCode,
  type UserInteractiveAuthFailure,
} from "./errors/user-interactive-auth-error.js";
export { TypedEmitter } from "./events/emitter.js";
export { orUndefinedOn } from "./http/expected-errors.js";
export {
  createMatrixHttp,
  type FetchLike,
  type MatrixHttpClient,
  type MatrixHttpEvents,
  type MatrixHttpOptions,
  type RefreshTokenCallback,
} from "./http/matrix-http.js";
export { matrixPath } from "./http/path.js";
export {
  defaultRetryConfig,
  type JitterStrategy,
  type OutcomeClass,
  type RetryConfig,
} from "./http/retry-policy.js";
export type { ServerVersions } from "./http/schemas/versions.js";
export type { HttpErrorCode, HttpMethod, MatrixHttp, MatrixRequest, RetryMode } from "./http/types.js";
export { type Logger, silentLogger } from "./logger.js";
export { createHttpAccountData, type HttpAccountDataOptions } from "./secret-storage/account-data-http.js";
export type { SecretStorageKeyDescription } from "./secret-storage/account-data-schemas.js";
export {
  CROSS_SIGNING_SECRET_NAMES,
  type CrossSigningKeyRole,
  type CrossSigningRestoreResult,
  restoreCrossSigningKeys,
  storeCrossSigningKeys,
} from "./secret-storage/cross-signing-secrets.js";
export {
  isSecretStorageError,
  SecretStorageError,
  type SecretStorageErrorCode,
  type SecretStorageSetupErrorCode,
} from "./secret-storage/errors.js";
export type { PassphraseInfo } from "./secret-storage/passphrase.js";
export { decodeRecoveryKey, encodeRecoveryKey } from "./secret-storage/recovery-key.js";
export {
  type AccountDataAccess,
  type CreatedSecretStorageKey,
  type CreateSecretStorageKeyOptions,
  SecretStorage,
  type SecretStorageKey,
} from "./secret-storage/secret-storage.js";
export { IndexedDbStateStore, type IndexedDbStateStoreOptions } from "./state/indexeddb-state-store.js";
export { MemoryStateStore } from "./state/memory-state-store.js";
export {
  isStateStoreError,
  type StateStore,
  StateStoreError,
  type StateStoreErrorCode,
} from "./state/state-store.js";
export { type Clock, systemClock } from "./time/clock.js";
