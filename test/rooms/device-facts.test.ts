import { initAsync } from "@matrix-org/matrix-sdk-crypto-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { type FactsMachine, readUserFacts } from "../../src/rooms/device-facts.js";

/**
 * crypto-wasm's `getIdentity` waits up to 1 s while a key query for the user is due, which lasts
 * as long as the user's server fails: the members' identities must be read together, not one
 * after another, or a send costs a second per such member.
 */

beforeAll(async () => {
  await initAsync();
});

describe("readUserFacts", () => {
  it("reads every member's identity at once", async () => {
    let inFlight = 0;
    let peak = 0;
    const release: (() => void)[] = [];
    const machine = {
      getIdentity: (_user: { free(): void }) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        return new Promise((resolve) => {
          release.push(() => {
            inFlight--;
            resolve(undefined);
          });
          // Each answer waits until every read has started, as a 1 s wait per user would.
          if (release.length === 5) for (const r of release.splice(0)) r();
        });
      },
      getUserDevices: async () => ({ devices: () => [], free() {} }),
    } as unknown as FactsMachine;
    const users = Array.from({ length: 5 }, (_, i) => `@u${i}:remote.example`);
    const facts = await readUserFacts(
      machine,
      { userId: "@me:home.example", deviceId: "ME" },
      users,
      () => "none" as never,
      undefined,
    );
    expect(peak).toBe(5);
    expect(facts.map((f) => f.userId)).toEqual(users);
    expect(facts.every((f) => f.identity === undefined && f.devices.length === 0)).toBe(true);
  });
});
