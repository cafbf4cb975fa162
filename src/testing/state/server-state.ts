import type { Clock } from "../../time/clock.js";
import type { SlidingConnectionState } from "../sync/sliding-connection-state.js";
import { AccountDataStore } from "./account-data-store.js";
import { AccountStore } from "./account-store.js";
import { DehydratedDeviceStore } from "./dehydrated-device-store.js";
import { FilterStore } from "./filter-store.js";
import { InjectedDeviceStore } from "./injected-device-store.js";
import { KeyStore } from "./key-store.js";
import { MediaStore } from "./media-store.js";
import { RoomStore } from "./room-store.js";
import { SessionTokenStore } from "./session-token-store.js";
import { SlidingConnectionStore } from "./sliding-connections.js";
import { ToDeviceStore } from "./to-device-store.js";
import { UiaStore } from "./uia-store.js";
import { UserProfileStore } from "./user-profile-store.js";

/** Everything the mock homeserver remembers; route handlers read and change it through these stores. */
export interface ServerState {
  serverName: string;
  clock: Clock;
  accounts: AccountStore;
  accountData: AccountDataStore;
  keys: KeyStore;
  /** Which device is each user's MSC3814 dehydrated device, and `…/events` faults. */
  dehydratedDevices: DehydratedDeviceStore;
  /** Extra devices a test injected as a hostile server (`MockControl.injectDeviceKeys`). */
  injectedDevices: InjectedDeviceStore;
  rooms: RoomStore;
  filters: FilterStore;
  media: MediaStore;
  userProfiles: UserProfileStore;
  /** Simplified sliding sync (MSC4186) connections and their positions. */
  slidingSync: SlidingConnectionStore<SlidingConnectionState>;
  toDevice: ToDeviceStore;
  /** Refresh tokens and access-token expiry (spec "Refreshing access tokens"). */
  sessionTokens: SessionTokenStore;
  uia: UiaStore;
}

export function createServerState(serverName: string, clock: Clock): ServerState {
  return {
    serverName,
    clock,
    accounts: new AccountStore(),
    accountData: new AccountDataStore(),
    keys: new KeyStore(),
    dehydratedDevices: new DehydratedDeviceStore(),
    injectedDevices: new InjectedDeviceStore(),
    rooms: new RoomStore(clock),
    filters: new FilterStore(),
    media: new MediaStore(),
    userProfiles: new UserProfileStore(),
    slidingSync: new SlidingConnectionStore(clock),
    toDevice: new ToDeviceStore(clock),
    sessionTokens: new SessionTokenStore(),
    uia: new UiaStore(),
  };
}
