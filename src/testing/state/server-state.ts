import type { Clock } from "../../time/clock.js";
import type { SlidingConnectionState } from "../sync/sliding-connection-state.js";
import { AccountDataStore } from "./account-data-store.js";
import { AccountStore } from "./account-store.js";
import { DehydratedDeviceStore } from "./dehydrated-device-store.js";
import { FilterStore } from "./filter-store.js";
import { InjectedDeviceStore } from "./injected-device-store.js";
import { KeyStore } from "./key-store.js";
import { MediaStore } from "./media-store.js";
import { type FederationOptions, RemoteDeviceLists } from "./remote-device-lists.js";
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
  /** Hosted remote servers and this server's copies of their users' device lists (simulated federation). */
  remoteDeviceLists: RemoteDeviceLists;
  /** Refresh tokens and access-token expiry (spec "Refreshing access tokens"). */
  sessionTokens: SessionTokenStore;
  uia: UiaStore;
}

export function createServerState(
  serverName: string,
  clock: Clock,
  federation: FederationOptions = {},
): ServerState {
  const accounts = new AccountStore();
  const keys = new KeyStore({ serverName });
  const rooms = new RoomStore(clock);
  const toDevice = new ToDeviceStore(clock);
  return {
    serverName,
    clock,
    accounts,
    accountData: new AccountDataStore(),
    keys,
    dehydratedDevices: new DehydratedDeviceStore(),
    injectedDevices: new InjectedDeviceStore(),
    rooms,
    filters: new FilterStore(),
    media: new MediaStore(),
    userProfiles: new UserProfileStore(),
    slidingSync: new SlidingConnectionStore(clock),
    toDevice,
    remoteDeviceLists: new RemoteDeviceLists(
      { keys, accounts, rooms, toDevice },
      clock,
      serverName,
      federation,
    ),
    sessionTokens: new SessionTokenStore(),
    uia: new UiaStore(),
  };
}
