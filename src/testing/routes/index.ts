import type { Profile } from "../profiles.js";
import type { Route } from "../route.js";
import type { ServerState } from "../state/server-state.js";
import { accountRoutes } from "./account.js";
import { accountDataRoutes } from "./account-data.js";
import { dehydratedDeviceRoutes } from "./dehydrated-device.js";
import { deviceListRefreshRoutes } from "./device-list-refresh.js";
import { devicesRoutes } from "./devices.js";
import { discoveryRoutes } from "./discovery.js";
import { filterRoutes } from "./filters.js";
import { keysRoutes } from "./keys.js";
import { mediaRoutes } from "./media.js";
import { profileRoutes } from "./profile.js";
import { pushRuleRoutes } from "./push-rules.js";
import { refreshRoutes } from "./refresh.js";
import { roomKeysRoutes } from "./room-keys.js";
import { roomMembershipRoutes } from "./room-membership.js";
import { roomRoutes } from "./rooms.js";
import { slidingSyncRoutes } from "./sliding-sync.js";
import { syncRoutes } from "./sync.js";
import { toDeviceRoutes } from "./to-device.js";

/** Every client-server route the mock serves; later features append their modules here. */
export const clientRoutes: readonly Route<ServerState, Profile>[] = [
  ...discoveryRoutes,
  ...accountRoutes,
  ...refreshRoutes,
  ...devicesRoutes,
  ...accountDataRoutes,
  ...roomKeysRoutes,
  ...keysRoutes,
  ...deviceListRefreshRoutes,
  ...toDeviceRoutes,
  ...dehydratedDeviceRoutes,
  ...slidingSyncRoutes,
  ...roomRoutes,
  ...roomMembershipRoutes,
  ...syncRoutes,
  ...filterRoutes,
  ...pushRuleRoutes,
  ...profileRoutes,
  ...mediaRoutes,
];
