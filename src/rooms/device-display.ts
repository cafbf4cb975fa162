/** How a device is presented: as the user's offline (dehydrated) device, or as one of their devices. */
export type DeviceDisplay = "offline_device" | "device";

/** What `displayDevices` reads of a device; `userId` and `displayName` are optional. */
export interface DisplayableDevice {
  deviceId: string;
  /** The signed device keys carry `"dehydrated": true` (MSC3814). */
  dehydrated: boolean;
  /** The devices of each user are counted apart; without it, all the devices count as one user's. */
  userId?: string | undefined;
  displayName?: string | null | undefined;
}

/** A device with how to show it. */
export type DisplayedDevice<T extends DisplayableDevice = DisplayableDevice> = T & {
  display: DeviceDisplay;
  /** Text an app can show: "Offline device", or the device's display name, or its id. */
  label: string;
};

/** The label of a user's single dehydrated device. */
export const OFFLINE_DEVICE_LABEL = "Offline device";

/**
 * MSC3814's display rule, per user: exactly one dehydrated device is "the user's offline device";
 * "if more than one device of a user is flagged dehydrated, clients should show them all as
 * ordinary devices" — the flag is the owner's word alone, so several of them mean something else
 * is going on (a client bug, a compromised account), and hiding them would help it hide. Every
 * other device is an ordinary device. Pure; the order is kept and the devices are copied, not
 * changed.
 */
export function displayDevices<T extends DisplayableDevice>(devices: readonly T[]): DisplayedDevice<T>[] {
  const dehydratedPerUser = new Map<string | undefined, number>();
  for (const device of devices) {
    if (device.dehydrated === true) {
      dehydratedPerUser.set(device.userId, (dehydratedPerUser.get(device.userId) ?? 0) + 1);
    }
  }
  return devices.map((device) => {
    const offline = device.dehydrated === true && dehydratedPerUser.get(device.userId) === 1;
    return {
      ...device,
      display: offline ? "offline_device" : "device",
      label: offline ? OFFLINE_DEVICE_LABEL : ownLabel(device),
    };
  });
}

/** The display name when it has any visible text, else the device id. */
function ownLabel(device: DisplayableDevice): string {
  const name = typeof device.displayName === "string" ? device.displayName.trim() : "";
  return name === "" ? device.deviceId : name;
}
