import { describe, expect, it } from "vitest";
import {
  type DisplayableDevice,
  displayDevices,
  OFFLINE_DEVICE_LABEL,
} from "../../src/rooms/device-display.js";

/** MSC3814's display rule: one dehydrated device is the user's offline device; several are ordinary. */

type Row = [
  name: string,
  devices: DisplayableDevice[],
  expected: { display: "offline_device" | "device"; label: string }[],
];

const phone = { deviceId: "PHONE", dehydrated: false, displayName: "Alice's phone" };
const laptop = { deviceId: "LAPTOP", dehydrated: false };
const dehydrated = (deviceId: string, displayName?: string) => ({ deviceId, dehydrated: true, displayName });

const rows: Row[] = [
  ["no devices", [], []],
  [
    "no dehydrated device",
    [phone, laptop],
    [
      { display: "device", label: "Alice's phone" },
      { display: "device", label: "LAPTOP" },
    ],
  ],
  [
    "one dehydrated device alone",
    [dehydrated("Kf3x/ab+key", "Dehydrated device")],
    [{ display: "offline_device", label: OFFLINE_DEVICE_LABEL }],
  ],
  [
    "one dehydrated device among ordinary ones",
    [phone, dehydrated("Kf3x/ab+key", "Dehydrated device"), laptop],
    [
      { display: "device", label: "Alice's phone" },
      { display: "offline_device", label: "Offline device" },
      { display: "device", label: "LAPTOP" },
    ],
  ],
  [
    "two dehydrated devices: all ordinary, by their own names or ids",
    [dehydrated("KEY1", "Dehydrated device"), phone, dehydrated("KEY2")],
    [
      { display: "device", label: "Dehydrated device" },
      { display: "device", label: "Alice's phone" },
      { display: "device", label: "KEY2" },
    ],
  ],
  [
    "three dehydrated devices",
    [dehydrated("K1"), dehydrated("K2"), dehydrated("K3")],
    [
      { display: "device", label: "K1" },
      { display: "device", label: "K2" },
      { display: "device", label: "K3" },
    ],
  ],
  [
    "a blank or missing display name falls back to the device id",
    [
      { deviceId: "BLANK", dehydrated: false, displayName: "   " },
      { deviceId: "NULL", dehydrated: false, displayName: null },
      { deviceId: "PADDED", dehydrated: false, displayName: "  Work laptop " },
    ],
    [
      { display: "device", label: "BLANK" },
      { display: "device", label: "NULL" },
      { display: "device", label: "Work laptop" },
    ],
  ],
  [
    "counted per user: one dehydrated device each",
    [
      { userId: "@alice:x", ...dehydrated("A-KEY") },
      { userId: "@bob:x", ...dehydrated("B-KEY") },
    ],
    [
      { display: "offline_device", label: OFFLINE_DEVICE_LABEL },
      { display: "offline_device", label: OFFLINE_DEVICE_LABEL },
    ],
  ],
  [
    "counted per user: two for one user, one for the other",
    [
      { userId: "@alice:x", ...dehydrated("A1") },
      { userId: "@alice:x", ...dehydrated("A2") },
      { userId: "@bob:x", ...dehydrated("B1") },
    ],
    [
      { display: "device", label: "A1" },
      { display: "device", label: "A2" },
      { display: "offline_device", label: OFFLINE_DEVICE_LABEL },
    ],
  ],
];

describe("displayDevices", () => {
  it.each(rows)("%s", (_name, devices, expected) => {
    const shown = displayDevices(devices);
    expect(shown.map(({ display, label }) => ({ display, label }))).toEqual(expected);
  });

  it("keeps every field of the input, in order, and does not change it", () => {
    const input = [
      { deviceId: "D1", dehydrated: true, localTrust: "verified" as const, extra: { a: 1 } },
      { deviceId: "D2", dehydrated: false, localTrust: "unset" as const, extra: { a: 2 } },
    ];
    const frozen = structuredClone(input);
    const shown = displayDevices(input);
    expect(shown).toEqual([
      { ...input[0], display: "offline_device", label: OFFLINE_DEVICE_LABEL },
      { ...input[1], display: "device", label: "D2" },
    ]);
    expect(input).toEqual(frozen);
    expect(shown[0]).not.toBe(input[0]);
    // The result keeps the input's type: `localTrust` is still typed.
    const trust: "verified" | "unset" = shown[0]!.localTrust;
    expect(trust).toBe("verified");
  });
});
