import { describe, expect, it } from "vitest";
import { needsCountRefresh, withCounts } from "../../src/sync/count-refresh.js";
import type { SlidingSyncE2eeResponse } from "../../src/sync/e2ee-changes.js";

const olm = (type: number) => ({
  type: "m.room.encrypted",
  sender: "@bob:hs",
  content: {
    algorithm: "m.olm.v1.curve25519-aes-sha2",
    sender_key: "k",
    ciphertext: { ourKey: { type, body: "x" } },
  },
});
const sliding = (e2ee: SlidingSyncE2eeResponse["e2ee"], events: unknown[] = []): SlidingSyncE2eeResponse => ({
  kind: "sliding",
  e2ee,
  toDevice: { events, nextBatch: "1" },
});

describe("needsCountRefresh", () => {
  it("asks when the first response of a run carries no count", () => {
    expect(needsCountRefresh(sliding(undefined), true)).toBe(true);
    expect(needsCountRefresh(sliding({}), true)).toBe(true);
    expect(needsCountRefresh(sliding(undefined), false)).toBe(false);
  });

  it("asks when Olm pre-key messages arrive without a count (each used one of our keys)", () => {
    expect(needsCountRefresh(sliding({}, [olm(0)]), false)).toBe(true);
    expect(needsCountRefresh(sliding({}, [olm(1)]), false)).toBe(false);
    expect(needsCountRefresh(sliding({}, [{ type: "m.dummy", content: {} }]), false)).toBe(false);
  });

  it("never asks when the server sent a count, nor on classic sync", () => {
    expect(needsCountRefresh(sliding({ deviceOneTimeKeysCount: {} }, [olm(0)]), true)).toBe(false);
    expect(needsCountRefresh({ kind: "classic", toDeviceEvents: [olm(0)] }, true)).toBe(false);
  });

  it("puts the fetched counts where the response had none", () => {
    expect(withCounts(sliding(undefined), { signed_curve25519: 3 })).toMatchObject({
      e2ee: { deviceOneTimeKeysCount: { signed_curve25519: 3 } },
    });
  });
});
