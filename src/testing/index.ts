export type { MockControl } from "./control.js";
export type { ControlledServer } from "./controlled-server.js";
export type { InjectDehydratedDeviceOptions } from "./dehydration-control.js";
export { type DehydrationFlags, dehydrationFlagsByProfile } from "./dehydration-flags.js";
export { type E2eeFlags, e2eeFlagsByProfile } from "./e2ee-flags.js";
export {
  defaultFaultSettings,
  type FaultKind,
  type FaultSettings,
  type ScriptedFailure,
  type ScriptedFailureSpec,
} from "./faults.js";
export type { MockHttpOutcome, MockHttpRequest } from "./http-exchange.js";
export type { InjectDeviceKeysOptions, InjectedDevice } from "./injected-device-control.js";
export { ManualClock } from "./manual-clock.js";
export {
  type ClientRoute,
  type ControlRoute,
  createMockHomeserver,
  MockHomeserver,
  type MockHomeserverOptions,
} from "./mock-homeserver.js";
export type { RunningMockServer, StartMockServerOptions } from "./node-server.js";
export {
  type CorsProfile,
  defaultProfileName,
  isProfileName,
  type Profile,
  type ProfileName,
  type ProfileOverrides,
  profiles,
  resolveProfile,
} from "./profiles.js";
export type { RequestLogEntry } from "./request-log.js";
export { type Caller, MatrixError, type MockResponse, type Route, type RouteContext } from "./route.js";
export { clientRoute } from "./routes/client-route.js";
export { DEHYDRATED_DEVICE_PATH } from "./routes/dehydration-gate.js";
export { SLIDING_SYNC_PATH } from "./routes/sliding-sync.js";
export { canonicalJson } from "./state/canonical-json.js";
export type {
  DehydratedDeviceRecord,
  DehydratedEventsFault,
  DehydratedEventsFaultKind,
  DehydratedEventsFaultSpec,
} from "./state/dehydrated-device-store.js";
export type { KeyStore } from "./state/key-store.js";
export type {
  FederationOptions,
  RemoteDeviceListCache,
  RemoteDeviceLists,
  RemoteDeviceListsMode,
  RemoteResyncReason,
  RemoteServerInfo,
} from "./state/remote-device-lists.js";
export type { Membership, RoomStore, StoredEvent } from "./state/room-store.js";
export type { ServerState } from "./state/server-state.js";
export type { TokenLifetimes } from "./state/session-token-store.js";
export type { SlidingConnectionInfo, SlidingConnectionMatch } from "./state/sliding-connections.js";
export type { ToDeviceMessages } from "./state/to-device-delivery.js";
export type { ToDeviceEvent, ToDeviceStore } from "./state/to-device-store.js";
export type { UserProfile } from "./state/user-profile-store.js";
export {
  currentSyncPosition,
  formatSyncToken,
  parseSyncToken,
  type SyncPosition,
} from "./sync/sync-token.js";
export type { ToDeviceInbox, ToDeviceInboxOptions, ToDeviceSender } from "./to-device-control.js";
export { requireUia, UiaRequiredError, userVerificationFlows } from "./uia.js";
export { jsonObjectBody, parseBody } from "./validation.js";

import type { RunningMockServer, StartMockServerOptions } from "./node-server.js";

/**
 * Starts the mock homeserver on a real socket (Node only). Loaded on demand so that importing this
 * module in a browser never pulls in `node:http`.
 */
export async function startMockServer(options: StartMockServerOptions = {}): Promise<RunningMockServer> {
  const { startMockServer: start } = await import("./node-server.js");
  return start(options);
}
