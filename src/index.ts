/**
 * The public API of `matrix-e2ee-devices`: the client, the types its options, results and events
 * name, the error classes with their guards, the state stores, and the clock and logger seams.
 * Everything else is internal. Constants and codecs for power users are in
 * `matrix-e2ee-devices/advanced`; the mock homeserver is `matrix-e2ee-devices/testing`.
 * The exported names are pinned by a test: adding one is a deliberate change.
 */
export {
  createE2eeClient,
  defaultStateStoreName,
  type E2eeClient,
  type SecretStorageApi,
} from "./client.js";
export type {
  ClientErrorCode,
  CreateE2eeClientOptions,
  E2eeClientEventStream,
  E2eeClientEvents,
} from "./client-options.js";
export type {
  CrossSigningApi,
  CrossSigningBootstrapOptions,
  CrossSigningBootstrapResult,
  CrossSigningBootstrapResultWithNewKey,
  CrossSigningErrorCode,
  RestoreFromRecoveryKeyOptions,
  RestoreFromRecoveryKeyResult,
} from "./cross-signing/cross-signing.js";
export type { CrossSigningKeyStatus } from "./crypto/cross-signing.js";
export type { CryptoEvents } from "./crypto/crypto-events.js";
export type { CryptoErrorCode } from "./crypto/errors.js";
export type { CryptoStoreOptions } from "./crypto/olm-machine.js";
export type { OutgoingRequestKind } from "./crypto/request-endpoints.js";
export type { AuthDict, UiaCallback, UiaChallenge } from "./crypto/user-interactive-auth.js";
export type {
  DehydratedDeviceStaleEvents,
  DehydrationApi,
  DehydrationKeyOptions,
  DehydrationModuleEvents,
  DehydrationStatus,
  DrainOptions,
  ReplaceNowOptions,
  RotationOptions,
} from "./dehydration/dehydration.js";
export type { DehydratedDeviceStatus } from "./dehydration/device/dehydration-manager.js";
export type { DehydratedDeviceRejection } from "./dehydration/device/device-validation.js";
export {
  DehydrationError,
  type DehydrationErrorCode,
  isDehydrationError,
} from "./dehydration/device/errors.js";
export type { DehydrationEvents } from "./dehydration/device/events.js";
export type {
  DrainCounts,
  DrainPageReport,
  DrainRunResult,
  DrainTuning,
  ReceivedRoomKey,
} from "./dehydration/drain/drain-loop.js";
export type { DrainOutcome } from "./dehydration/drain/drainer.js";
export { DrainError, type DrainErrorCode, isDrainError } from "./dehydration/drain/errors.js";
export type { DrainEvents } from "./dehydration/drain/events.js";
export type {
  PaginationEndReason,
  PaginationLimits,
  PaginationTruncationReason,
} from "./dehydration/drain/pagination.js";
export type {
  DehydratedDeviceResetOutcome,
  StaleDehydratedDeviceReason,
} from "./dehydration/identity-reset.js";
export type {
  ReplaceReason,
  RotationErrorCode,
  RotationEvents,
  RotationPassResult,
} from "./dehydration/rotation/rotation.js";
export type { RotationRecord } from "./dehydration/rotation/rotation-plan.js";
export type { DeviceListsApi, EnsureFreshOptions } from "./device-lists/device-lists.js";
export type { DeviceListErrorCode } from "./device-lists/errors.js";
export type { DeviceListsEvents, DeviceListsModuleEvents } from "./device-lists/events.js";
export type { DeviceListsOptions } from "./device-lists/options.js";
export type { DeviceListStaleReason, DeviceListTrust } from "./device-lists/trust.js";
export { AbortError, isAbortError } from "./errors/abort-error.js";
export type { ErrorInfo } from "./errors/error-info.js";
export {
  type FieldIssue,
  isMalformedResponseError,
  MalformedResponseError,
} from "./errors/malformed-response-error.js";
export { isMatrixApiError, MatrixApiError, type MatrixApiErrorKind } from "./errors/matrix-api-error.js";
export { isNetworkError, NetworkError } from "./errors/network-error.js";
export { isSdkError, SdkError } from "./errors/sdk-error.js";
export { isTimeoutError, TimeoutError } from "./errors/timeout-error.js";
export {
  isUserInteractiveAuthError,
  UserInteractiveAuthError,
  type UserInteractiveAuthErrorCode,
  type UserInteractiveAuthFailure,
} from "./errors/user-interactive-auth-error.js";
export type { FetchLike, MatrixHttpEvents, RefreshTokenCallback } from "./http/matrix-http.js";
export type { JitterStrategy, OutcomeClass, RetryConfig } from "./http/retry-policy.js";
export type { HttpErrorCode } from "./http/types.js";
export { type Logger, silentLogger } from "./logger.js";
export type { AppliedRecipient, PlanDifference } from "./rooms/applied-plan.js";
export type { DisplayedDevice } from "./rooms/device-display.js";
export type { RoomsEvents } from "./rooms/events.js";
export type {
  DeviceFacts,
  IdentityFacts,
  LocalTrust,
  PlanRefusal,
  RecipientDecision,
  RecipientPlan,
  RecipientRule,
  SharingStrategy,
  WithheldCode,
} from "./rooms/recipient-plan.js";
export type {
  EncryptedRoomEvent,
  RoomDecryptFailure,
  RoomDecryptResult,
} from "./rooms/room-decryption.js";
export type { HistoryVisibility, RoomEncryption } from "./rooms/room-encryption.js";
export { isRoomError, RoomError, type RoomErrorCode } from "./rooms/room-errors.js";
export type {
  RoomPlanOptions,
  RoomSendOptions,
  RoomSendResult,
  RoomsApi,
  RoomsModuleEvents,
  RoomUpdate,
} from "./rooms/rooms.js";
export type { SecretStorageKeyDescription } from "./secret-storage/account-data-schemas.js";
export type { CrossSigningKeyRole } from "./secret-storage/cross-signing-secrets.js";
export {
  isSecretStorageError,
  SecretStorageError,
  type SecretStorageErrorCode,
  type SecretStorageSetupErrorCode,
} from "./secret-storage/errors.js";
export type { SecretStorageKey } from "./secret-storage/key-holder.js";
export type { PassphraseInfo } from "./secret-storage/passphrase.js";
export type {
  CreatedSecretStorageKey,
  CreateSecretStorageKeyOptions,
} from "./secret-storage/secret-storage.js";
export { IndexedDbStateStore, type IndexedDbStateStoreOptions } from "./state/indexeddb-state-store.js";
export { MemoryStateStore } from "./state/memory-state-store.js";
export {
  isStateStoreError,
  type StateStore,
  StateStoreError,
  type StateStoreErrorCode,
} from "./state/state-store.js";
export type { SyncErrorCode } from "./sync/connection-claim.js";
export type { ReceivedToDeviceEvent } from "./sync/crypto-sync.js";
export type { SyncEvents, SyncMode } from "./sync/events.js";
export type {
  ClassicSyncResponseBody,
  EncryptionExtensionsRequest,
  SlidingSyncExtension,
  SyncApi,
  SyncModuleEvents,
  SyncStartOptions,
  SyncStatus,
} from "./sync/sync.js";
export { type Clock, systemClock } from "./time/clock.js";
