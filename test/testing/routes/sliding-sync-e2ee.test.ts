import { describe, expect, it } from "vitest";
import type { MockHomeserverOptions } from "../../../src/testing/index.js";
import { harnessesOn, type StartHarness, transports } from "../support/transports.js";
import { deviceKeysFor, registerUser, signedCurveKey, type TestDevice } from "./e2ee-test-users.js";
import { appendEvent, createRoomInStore, E2EE_ONLY, extension, slide } from "./sliding-sync-helpers.js";

async function setup(start: StartHarness, options: MockHomeserverOptions = {}) {
  const server = await start(options);
  const mock = server.homeserver;
  const alice = await registerUser(server, "alice");
  const bob = await registerUser(server, "bob");
  /** One e2ee-only request as `device`, returning the extension and the next pos. */
  const e2ee = async (device: TestDevice, pos?: string) => {
    const res = await slide(server, device, E2EE_ONLY, pos === undefined ? {} : { pos });
    expect(res.status).toBe(200);
    return { ext: extension(res, "e2ee"), pos: res.body.pos as string };
  };
  return { server, mock, alice, bob, e2ee };
}

const uploadOneTimeKeys = (d: TestDevice, ...ids: string[]) =>
  d.call("POST", "keys/upload", {
    one_time_keys: Object.fromEntries(
      ids.map((id) => [`signed_curve25519:${id}`, signedCurveKey(d, `otk-${id}`)]),
    ),
  });
const uploadFallbackKey = (d: TestDevice, id: string) =>
  d.call("POST", "keys/upload", {
    fallback_keys: { [`signed_curve25519:${id}`]: signedCurveKey(d, `fallback-${id}`, true) },
  });
const claimOne = (claimer: TestDevice, owner: TestDevice) =>
  claimer.call("POST", "keys/claim", {
    one_time_keys: { [owner.userId]: { [owner.deviceId]: "signed_curve25519" } },
  });

describe.each(transports)("sliding sync e2ee extension under Synapse (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("sends both key fields with a seeded zero count, and no device_lists without a pos", async () => {
    const { alice, e2ee } = await setup(start);
    const { ext } = await e2ee(alice);
    expect(ext).toEqual({
      device_one_time_keys_count: { signed_curve25519: 0 },
      device_unused_fallback_key_types: [],
    });
  });

  it("sends device_lists on every request with a pos, empty when nothing changed", async () => {
    const { alice, e2ee } = await setup(start);
    const first = await e2ee(alice);
    const { ext } = await e2ee(alice, first.pos);
    expect(ext).toEqual({
      device_one_time_keys_count: { signed_curve25519: 0 },
      device_unused_fallback_key_types: [],
      device_lists: { changed: [], left: [] },
    });
  });

  it("repeats unchanged key fields in every response", async () => {
    const { alice, e2ee } = await setup(start);
    await uploadOneTimeKeys(alice, "A", "B");
    await uploadFallbackKey(alice, "F");
    const first = await e2ee(alice);
    const second = await e2ee(alice, first.pos);

    for (const { ext } of [first, second]) {
      expect(ext.device_one_time_keys_count).toEqual({ signed_curve25519: 2 });
      expect(ext.device_unused_fallback_key_types).toEqual(["signed_curve25519"]);
    }
  });

  it("reports claimed one-time keys and a used fallback key", async () => {
    const { alice, bob, e2ee } = await setup(start);
    await uploadOneTimeKeys(alice, "A");
    await uploadFallbackKey(alice, "F");
    const first = await e2ee(alice);

    await claimOne(bob, alice);
    await claimOne(bob, alice);
    const { ext } = await e2ee(alice, first.pos);

    expect(first.ext.device_one_time_keys_count).toEqual({ signed_curve25519: 1 });
    expect(ext.device_one_time_keys_count).toEqual({ signed_curve25519: 0 });
    expect(ext.device_unused_fallback_key_types).toEqual([]);
  });

  it("lists users sharing a room whose keys changed, and users who no longer share one", async () => {
    const { server, mock, alice, bob, e2ee } = await setup(start);
    const carol = await registerUser(server, "carol");
    createRoomInStore(mock, "!shared:localhost", alice.userId, { members: [bob.userId, carol.userId] });
    const first = await e2ee(alice);

    await bob.call("POST", "keys/upload", { device_keys: deviceKeysFor(bob) });
    await carol.call("POST", "keys/upload", { device_keys: deviceKeysFor(carol) });
    appendEvent(
      mock,
      "!shared:localhost",
      carol.userId,
      "m.room.member",
      { membership: "leave" },
      carol.userId,
    );
    const { ext } = await e2ee(alice, first.pos);

    expect(ext.device_lists).toEqual({ changed: [bob.userId], left: [carol.userId] });
  });

  it("does not list a user who shares no room with the caller", async () => {
    const { alice, bob, e2ee } = await setup(start);
    const first = await e2ee(alice);
    await bob.call("POST", "keys/upload", { device_keys: deviceKeysFor(bob) });
    const { ext } = await e2ee(alice, first.pos);
    expect(ext.device_lists).toEqual({ changed: [], left: [] });
  });
});

describe.each(transports)(
  "sliding sync e2ee extension under the msc profile (MSC3884 delta semantics) (%s)",
  (transport) => {
    const start = harnessesOn(transport);

    it("sends every key field first — counts unseeded — and nothing once nothing changed", async () => {
      const { alice, e2ee } = await setup(start, { profile: "msc" });
      const first = await e2ee(alice);
      const second = await e2ee(alice, first.pos);

      expect(first.ext).toEqual({ device_one_time_keys_count: {}, device_unused_fallback_key_types: [] });
      expect(second.ext).toEqual({});
    });

    it("sends only the field that changed", async () => {
      const { alice, e2ee } = await setup(start, { profile: "msc" });
      await uploadFallbackKey(alice, "F");
      const first = await e2ee(alice);

      await uploadOneTimeKeys(alice, "A", "B", "C");
      const second = await e2ee(alice, first.pos);

      expect(first.ext.device_unused_fallback_key_types).toEqual(["signed_curve25519"]);
      expect(second.ext).toEqual({ device_one_time_keys_count: { signed_curve25519: 3 } });
    });

    it("sends an empty fallback list when the fallback key was used, which is not the same as omitting it", async () => {
      const { alice, bob, e2ee } = await setup(start, { profile: "msc" });
      await uploadFallbackKey(alice, "F");
      const first = await e2ee(alice);

      await claimOne(bob, alice);
      const used = await e2ee(alice, first.pos);
      const after = await e2ee(alice, used.pos);

      expect(used.ext).toEqual({ device_unused_fallback_key_types: [] });
      expect(after.ext).not.toHaveProperty("device_unused_fallback_key_types");
    });

    it("computes the delta from the pos sent, so a retried request gets the change again", async () => {
      const { alice, bob, e2ee } = await setup(start, { profile: "msc" });
      await uploadOneTimeKeys(alice, "A");
      const first = await e2ee(alice);
      await claimOne(bob, alice);

      const lostResponse = await e2ee(alice, first.pos);
      const retry = await e2ee(alice, first.pos);
      const next = await e2ee(alice, retry.pos);

      expect(lostResponse.ext).toEqual({ device_one_time_keys_count: {} });
      expect(retry.ext).toEqual({ device_one_time_keys_count: {} });
      expect(next.ext).toEqual({});
    });

    it("leaves device_lists out when it would be empty and sends it when someone changed", async () => {
      const { mock, alice, bob, e2ee } = await setup(start, { profile: "msc" });
      createRoomInStore(mock, "!shared:localhost", alice.userId, { members: [bob.userId] });
      const first = await e2ee(alice);
      const quiet = await e2ee(alice, first.pos);

      await bob.call("POST", "keys/upload", { device_keys: deviceKeysFor(bob) });
      const changed = await e2ee(alice, quiet.pos);

      expect(quiet.ext).not.toHaveProperty("device_lists");
      expect(changed.ext).toEqual({ device_lists: { changed: [bob.userId], left: [] } });
    });
  },
);

describe.each(transports)("sliding sync e2ee extension under tuwunel (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("omits a zero one-time key count, so a client reading omission as unchanged keeps a stale count", async () => {
    const { alice, bob, e2ee } = await setup(start, { profile: "tuwunel" });
    const empty = await e2ee(alice);
    await uploadOneTimeKeys(alice, "A");
    const one = await e2ee(alice, empty.pos);
    await claimOne(bob, alice);
    const drained = await e2ee(alice, one.pos);

    expect(empty.ext).toEqual({ device_unused_fallback_key_types: [] });
    expect(one.ext.device_one_time_keys_count).toEqual({ signed_curve25519: 1 });
    expect(drained.ext).not.toHaveProperty("device_one_time_keys_count");
    expect(drained.ext.device_unused_fallback_key_types).toEqual([]);
  });

  it("leaves out an empty device_lists even on a request with a pos", async () => {
    const { alice, e2ee } = await setup(start, { profile: "tuwunel" });
    const first = await e2ee(alice);
    const { ext } = await e2ee(alice, first.pos);
    expect(ext).not.toHaveProperty("device_lists");
  });
});

describe.each(transports)("sliding sync e2ee extension under continuwuity (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("leaves e2ee out while a device has no keys, then sends counts but never fallback key types", async () => {
    const { server, alice, bob } = await setup(start, { profile: "continuwuity" });
    const e2ee = async (pos?: string) => {
      const res = await slide(server, alice, E2EE_ONLY, pos === undefined ? {} : { pos });
      return { ext: (res.body.extensions as Record<string, unknown>).e2ee, pos: res.body.pos as string };
    };
    const empty = await e2ee();
    await uploadOneTimeKeys(alice, "A");
    await uploadFallbackKey(alice, "F");
    const keyed = await e2ee(empty.pos);
    await claimOne(bob, alice);
    const drained = await e2ee(keyed.pos);

    expect(empty.ext).toBeUndefined();
    expect(keyed.ext).toEqual({ device_one_time_keys_count: { signed_curve25519: 1 } });
    // The count is gone and nothing says the fallback key is still unused: e2ee is left out.
    expect(drained.ext).toBeUndefined();
  });
});

describe.each(transports)(
  "sliding sync e2ee profile flags, one at a time on the Synapse profile (%s)",
  (transport) => {
    const start = harnessesOn(transport);

    it("slidingE2eeKeyFields: when-changed drops unchanged key fields", async () => {
      const { alice, e2ee } = await setup(start, { overrides: { slidingE2eeKeyFields: "when-changed" } });
      const first = await e2ee(alice);
      const { ext } = await e2ee(alice, first.pos);
      expect(first.ext).toEqual({
        device_one_time_keys_count: { signed_curve25519: 0 },
        device_unused_fallback_key_types: [],
      });
      expect(ext).toEqual({ device_lists: { changed: [], left: [] } });
    });

    it("slidingE2eeDeviceLists: when-nonempty drops the empty device_lists", async () => {
      const { alice, e2ee } = await setup(start, { overrides: { slidingE2eeDeviceLists: "when-nonempty" } });
      const first = await e2ee(alice);
      const { ext } = await e2ee(alice, first.pos);
      expect(ext).toEqual({
        device_one_time_keys_count: { signed_curve25519: 0 },
        device_unused_fallback_key_types: [],
      });
    });

    it("slidingOmitZeroKeyCounts drops the seeded zero count", async () => {
      const { alice, e2ee } = await setup(start, { overrides: { slidingOmitZeroKeyCounts: true } });
      const { ext } = await e2ee(alice);
      expect(ext).toEqual({ device_unused_fallback_key_types: [] });
    });

    it("sends no e2ee extension at all when the request does not enable it", async () => {
      const { server, alice } = await setup(start);
      const res = await slide(server, alice, { extensions: { e2ee: { enabled: false } } });
      expect(res.body.extensions).toEqual({});
    });
  },
);
