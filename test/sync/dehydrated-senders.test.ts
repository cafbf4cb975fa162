import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { loadCryptoWasm } from "../../src/crypto/load-wasm.js";
import { dropFromDehydratedDevices } from "../../src/sync/dehydrated-senders.js";

/** A machine whose only known devices are `dehydrated` (flagged) and `ordinary`, both of @bob. */
function machineKnowing(calls: string[]): Pick<OlmMachine, "getDevice"> {
  return {
    getDevice: (async (userId: { toString(): string }, deviceId: { toString(): string }) => {
      const id = deviceId.toString();
      calls.push(`${userId.toString()}|${id}`);
      if (userId.toString() !== "@bob:hs" || (id !== "DEHYDRATED" && id !== "ORDINARY")) return undefined;
      return { isDehydrated: id === "DEHYDRATED", free: () => {} };
    }) as unknown as OlmMachine["getDevice"],
  };
}

describe("dropFromDehydratedDevices", () => {
  beforeAll(() => loadCryptoWasm());

  it("drops plaintext messages naming a dehydrated device, keeps the rest in order", async () => {
    const calls: string[] = [];
    const events = [
      {
        type: "m.room_key_request",
        sender: "@bob:hs",
        content: { requesting_device_id: "DEHYDRATED", action: "request" },
      },
      { type: "m.key.verification.request", sender: "@bob:hs", content: { from_device: "DEHYDRATED" } },
      { type: "m.secret.request", sender: "@bob:hs", content: { requesting_device_id: "ORDINARY" } },
      { type: "m.key.verification.request", sender: "@bob:hs", content: { from_device: "UNKNOWN" } },
      // Encrypted messages are the crypto layer's to judge, whatever their content claims.
      { type: "m.room.encrypted", sender: "@bob:hs", content: { from_device: "DEHYDRATED" } },
      { type: "org.example", sender: "@bob:hs", content: {} },
      "not an event",
      {
        type: "m.room_key_request",
        sender: "not a user id",
        content: { requesting_device_id: "DEHYDRATED" },
      },
    ];
    const { kept, dropped } = await dropFromDehydratedDevices(machineKnowing(calls), events);
    expect(kept).toEqual([events[2], events[3], events[4], events[5], events[6], events[7]]);
    expect(dropped).toEqual([
      {
        type: "m.room_key_request",
        sender: "@bob:hs",
        deviceId: "DEHYDRATED",
        reason: "from_dehydrated_device",
      },
      {
        type: "m.key.verification.request",
        sender: "@bob:hs",
        deviceId: "DEHYDRATED",
        reason: "from_dehydrated_device",
      },
    ]);
    // One lookup per device, however many messages name it.
    expect(calls.filter((c) => c === "@bob:hs|DEHYDRATED")).toHaveLength(1);
  });
});
