import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type CryptoSyncCall,
  type E2eeSyncState,
  initialE2eeSyncState,
  reduceSyncE2ee,
  type SyncE2eeResponse,
} from "../../src/sync/e2ee-changes.js";

const known: E2eeSyncState = {
  oneTimeKeyCounts: { signed_curve25519: 42 },
  unusedFallbackKeyTypes: ["signed_curve25519"],
};
const event = { type: "m.room.encrypted", sender: "@bob:hs", content: {} };

type Row = {
  name: string;
  response: SyncE2eeResponse;
  call: Partial<CryptoSyncCall>;
  state: Partial<E2eeSyncState>;
  /** The cursor to send as `since` next; `undefined`: the previous one stays. */
  toDeviceNextBatch?: string;
};

const rows: Row[] = [
  {
    name: "sliding: no e2ee and no to_device object — everything unchanged",
    response: { kind: "sliding", e2ee: undefined, toDevice: undefined },
    call: {
      oneTimeKeyCounts: undefined,
      unusedFallbackKeyTypes: undefined,
      changed: [],
      left: [],
      toDeviceEvents: [],
    },
    state: known,
  },
  {
    name: "sliding: e2ee present but empty — every field unchanged",
    response: { kind: "sliding", e2ee: {}, toDevice: undefined },
    call: { oneTimeKeyCounts: undefined, unusedFallbackKeyTypes: undefined },
    state: known,
  },
  {
    name: "sliding: fallback types [] — the fallback key was used (not unchanged)",
    response: { kind: "sliding", e2ee: { deviceUnusedFallbackKeyTypes: [] }, toDevice: undefined },
    call: { unusedFallbackKeyTypes: [], oneTimeKeyCounts: undefined },
    state: { ...known, unusedFallbackKeyTypes: [] },
  },
  {
    name: "sliding: a count map without signed_curve25519 — that count is zero (an unlisted algorithm is)",
    response: { kind: "sliding", e2ee: { deviceOneTimeKeysCount: {} }, toDevice: undefined },
    call: { oneTimeKeyCounts: { signed_curve25519: 0 } },
    state: { ...known, oneTimeKeyCounts: { signed_curve25519: 0 } },
  },
  {
    name: "sliding: a present map replaces the last one (other algorithms kept as listed)",
    response: { kind: "sliding", e2ee: { deviceOneTimeKeysCount: { curve25519: 3 } }, toDevice: undefined },
    call: { oneTimeKeyCounts: { signed_curve25519: 0, curve25519: 3 } },
    state: { ...known, oneTimeKeyCounts: { signed_curve25519: 0, curve25519: 3 } },
  },
  {
    name: "sliding: a zero count is a zero, not an absence",
    response: {
      kind: "sliding",
      e2ee: { deviceOneTimeKeysCount: { signed_curve25519: 0 } },
      toDevice: undefined,
    },
    call: { oneTimeKeyCounts: { signed_curve25519: 0 } },
    state: { ...known, oneTimeKeyCounts: { signed_curve25519: 0 } },
  },
  {
    name: "sliding: device_lists omitted vs empty both change no list",
    response: { kind: "sliding", e2ee: { deviceLists: { changed: [], left: [] } }, toDevice: undefined },
    call: { changed: [], left: [] },
    state: known,
  },
  {
    name: "sliding: device lists pass through",
    response: {
      kind: "sliding",
      e2ee: { deviceLists: { changed: ["@bob:hs"], left: ["@carol:hs"] } },
      toDevice: undefined,
    },
    call: { changed: ["@bob:hs"], left: ["@carol:hs"] },
    state: known,
  },
  {
    name: "sliding: to_device without next_batch keeps the previous since",
    response: { kind: "sliding", e2ee: undefined, toDevice: { events: [event], nextBatch: undefined } },
    call: { toDeviceEvents: [event] },
    state: known,
  },
  {
    name: "sliding: to_device next_batch becomes the next since",
    response: { kind: "sliding", e2ee: undefined, toDevice: { events: [], nextBatch: "t9" } },
    call: { toDeviceEvents: [] },
    state: known,
    toDeviceNextBatch: "t9",
  },
  {
    name: "classic: no counts at all — signed_curve25519 is zero",
    response: { kind: "classic", toDeviceEvents: undefined },
    call: {
      method: "receiveSyncChanges",
      oneTimeKeyCounts: { signed_curve25519: 0 },
      unusedFallbackKeyTypes: undefined,
    },
    state: { ...known, oneTimeKeyCounts: { signed_curve25519: 0 } },
  },
  {
    name: "classic: a map missing signed_curve25519 — zero, other counts kept",
    response: { kind: "classic", deviceOneTimeKeysCount: { curve25519: 3 }, toDeviceEvents: [event] },
    call: { oneTimeKeyCounts: { signed_curve25519: 0, curve25519: 3 }, toDeviceEvents: [event] },
    state: { ...known, oneTimeKeyCounts: { signed_curve25519: 0, curve25519: 3 } },
  },
  {
    name: "classic: fallback [] is used, omitted is no information",
    response: { kind: "classic", deviceUnusedFallbackKeyTypes: [], toDeviceEvents: undefined },
    call: { unusedFallbackKeyTypes: [] },
    state: { ...known, oneTimeKeyCounts: { signed_curve25519: 0 }, unusedFallbackKeyTypes: [] },
  },
  {
    name: "classic: the to-device cursor is sliding sync's alone",
    response: { kind: "classic", toDeviceEvents: [] },
    call: {},
    state: { ...known, oneTimeKeyCounts: { signed_curve25519: 0 } },
    toDeviceNextBatch: undefined,
  },
];

describe("reduceSyncE2ee", () => {
  it.each(rows)("$name", ({ response, call, state, toDeviceNextBatch }) => {
    const out = reduceSyncE2ee(known, response);
    expect(out.call).toMatchObject(call);
    expect(out.state).toEqual({ ...known, ...state });
    expect(out.toDeviceNextBatch).toBe(toDeviceNextBatch);
    expect(out.call.method).toBe(
      response.kind === "sliding" ? "receiveSyncChangesMsc4186" : "receiveSyncChanges",
    );
  });

  it("from the initial state, an omitted field stays unknown", () => {
    const out = reduceSyncE2ee(initialE2eeSyncState, { kind: "sliding", e2ee: {}, toDevice: undefined });
    expect(out.state).toEqual(initialE2eeSyncState);
  });

  it("never invents an empty map or set for an absent field, nor drops a present one (sliding)", () => {
    const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
    fc.assert(
      fc.property(
        maybe(fc.dictionary(fc.string(), fc.nat())),
        maybe(fc.array(fc.string())),
        fc.boolean(),
        (counts, fallback, e2eePresent) => {
          const e2ee = e2eePresent
            ? { deviceOneTimeKeysCount: counts, deviceUnusedFallbackKeyTypes: fallback }
            : undefined;
          const { call } = reduceSyncE2ee(known, { kind: "sliding", e2ee, toDevice: undefined });
          // A present map arrives with every count it listed, and signed_curve25519 always.
          if (e2eePresent && counts !== undefined) {
            expect(call.oneTimeKeyCounts).toMatchObject({ ...counts });
            expect(call.oneTimeKeyCounts?.signed_curve25519).toBe(counts.signed_curve25519 ?? 0);
          } else expect(call.oneTimeKeyCounts).toBeUndefined();
          expect(call.unusedFallbackKeyTypes).toBe(e2eePresent ? fallback : undefined);
        },
      ),
    );
  });

  it("does not mutate its input state", () => {
    const frozen = Object.freeze({ ...known, oneTimeKeyCounts: Object.freeze({ signed_curve25519: 1 }) });
    reduceSyncE2ee(frozen, {
      kind: "sliding",
      e2ee: { deviceOneTimeKeysCount: { signed_curve25519: 5 } },
      toDevice: undefined,
    });
    expect(frozen.oneTimeKeyCounts).toEqual({ signed_curve25519: 1 });
  });
});
