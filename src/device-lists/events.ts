import type { Prefixed } from "../events/prefixed.js";
import type { DeviceListTrust } from "./trust.js";

/** Events of `client.deviceLists` (on `client.events` as `deviceLists.*`). Payloads are plain data. */
export interface DeviceListsEvents {
  /** A user's trust changed (`trust` is the new one, as `client.deviceLists.trust(userId)` gives it). */
  trustChanged: { userId: string; trust: DeviceListTrust };
}

/** The client's device-list events: `deviceLists.trustChanged`. */
export type DeviceListsModuleEvents = Prefixed<"deviceLists", DeviceListsEvents>;
