import { describe, expect, it } from "vitest";
import type { MockHomeserverOptions, ProfileName } from "../../../src/testing/index.js";
import { MAX_TO_DEVICE_EVENTS_PER_RESPONSE } from "../../../src/testing/sync/sliding-to-device.js";
import { harnessesOn, type StartHarness, transports } from "../support/transports.js";
import { loginDevice, registerUser, type TestDevice } from "./e2ee-test-users.js";
import { since, sync } from "./room-support.js";
import { extension, slide } from "./sliding-sync-helpers.js";

async function setup(start: StartHarness, options: MockHomeserverOptions = {}) {
  const server = await start(options);
  const mock = server.homeserver;
  const alice = await registerUser(server, "alice");
  const bob = await registerUser(server, "bob");
  /** Queues `n` messages from bob for `to`, numbered from `first`. */
  const queue = (to: TestDevice, n: number, first = 1) => {
    for (let i = first; i < first + n; i++) {
      mock.state.toDevice.enqueue(to.userId, to.deviceId, {
        type: "m.test",
        sender: bob.userId,
        content: { n: i },
      });
    }
  };
  /** One to-device-only request; returns the extension. */
  const toDevice = async (
    device: TestDevice,
    options: { since?: string; limit?: number; connId?: string } = {},
  ) => {
    const body = {
      ...(options.connId !== undefined ? { conn_id: options.connId } : {}),
      extensions: {
        to_device: {
          enabled: true,
          ...(options.since !== undefined ? { since: options.since } : {}),
          ...(options.limit !== undefined ? { limit: options.limit } : {}),
        },
      },
    };
    const res = await slide(server, device, body);
    expect(res.status).toBe(200);
    const ext = extension(res, "to_device") as { next_batch: string; events: { content: { n: number } }[] };
    return { nextBatch: ext.next_batch, numbers: ext.events.map((e) => e.content.n), ext };
  };
  /**
   * One to-device-only request, optionally on a connection's `pos`, that tolerates a missing
   * extension (tuwunel) and a missing `events` (continuwuity).
   */
  const raw = async (
    device: TestDevice,
    options: { since?: string; limit?: number; pos?: string } = {},
  ): Promise<RawToDevice> => {
    const { pos, ...fields } = options;
    const res = await slide(
      server,
      device,
      { extensions: { to_device: { enabled: true, ...fields } } },
      pos === undefined ? {} : { pos },
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const ext = (res.body.extensions as Record<string, unknown>).to_device as RawToDevice["ext"];
    return { ext, numbers: ext?.events?.map((e) => e.content.n) ?? [], pos: res.body.pos as string };
  };
  const pending = (device: TestDevice) => mock.state.toDevice.pendingCount(device.userId, device.deviceId);
  return { server, mock, alice, bob, queue, toDevice, raw, pending };
}

interface RawToDevice {
  ext: { next_batch: string; events?: { content: { n: number } }[] } | undefined;
  numbers: number[];
  pos: string;
}

describe.each(transports)("sliding sync to_device extension (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("always sends events, possibly empty, and next_batch as a string", async () => {
    const { toDevice, alice } = await setup(start);
    const { ext } = await toDevice(alice);
    expect(ext).toEqual({ next_batch: expect.stringMatching(/^\d+$/), events: [] });
  });

  it("delivers messages as {type, sender, content}, oldest first", async () => {
    const { mock, alice, bob, toDevice } = await setup(start);
    await bob.call("PUT", "sendToDevice/m.room_key_request/t1", {
      messages: { [alice.userId]: { [alice.deviceId]: { action: "request" } } },
    });
    await bob.call("PUT", "sendToDevice/m.dummy/t2", { messages: { [alice.userId]: { "*": {} } } });

    const { ext } = await toDevice(alice);

    expect(ext.events).toEqual([
      { type: "m.room_key_request", sender: bob.userId, content: { action: "request" } },
      { type: "m.dummy", sender: bob.userId, content: {} },
    ]);
    expect(ext.next_batch).toBe(String(mock.state.toDevice.position));
  });

  it("keeps messages until a later request acknowledges them with since", async () => {
    const { mock, alice, queue, toDevice } = await setup(start);
    queue(alice, 3);

    const first = await toDevice(alice);
    const lostAndRetried = await toDevice(alice);
    const acknowledged = await toDevice(alice, { since: first.nextBatch });

    expect(first.numbers).toEqual([1, 2, 3]);
    expect(lostAndRetried.numbers).toEqual([1, 2, 3]);
    expect(acknowledged.numbers).toEqual([]);
    expect(mock.state.toDevice.pendingCount(alice.userId, alice.deviceId)).toBe(0);
  });

  it("acknowledges per device, not per connection: since on one conn_id deletes for every conn_id", async () => {
    const { server, alice, queue, toDevice } = await setup(start);
    const aliceLaptop = await loginDevice(server, "alice");
    queue(alice, 2);
    queue(aliceLaptop, 2, 10);

    const onMain = await toDevice(alice, { connId: "main" });
    await toDevice(alice, { connId: "notifications", since: onMain.nextBatch });
    const mainAgain = await toDevice(alice, { connId: "main" });
    const laptop = await toDevice(aliceLaptop, { connId: "main" });

    expect(onMain.numbers).toEqual([1, 2]);
    expect(mainAgain.numbers).toEqual([]);
    expect(laptop.numbers).toEqual([10, 11]);
  });

  it(`caps a page at ${MAX_TO_DEVICE_EVENTS_PER_RESPONSE} events whatever the limit, and pages on with next_batch`, async () => {
    const { alice, queue, toDevice } = await setup(start);
    queue(alice, 150);

    const first = await toDevice(alice, { limit: 500 });
    const second = await toDevice(alice, { since: first.nextBatch, limit: 500 });

    expect(first.numbers).toHaveLength(100);
    expect(first.numbers.at(-1)).toBe(100);
    expect(second.numbers).toEqual(Array.from({ length: 50 }, (_, i) => 101 + i));
  });

  it("honours a limit below the cap", async () => {
    const { alice, queue, toDevice } = await setup(start);
    queue(alice, 5);

    const first = await toDevice(alice, { limit: 2 });
    const second = await toDevice(alice, { since: first.nextBatch, limit: 2 });

    expect(first.numbers).toEqual([1, 2]);
    expect(second.numbers).toEqual([3, 4]);
  });

  it("answers a since from the future with no events and echoes it, deleting nothing", async () => {
    const { mock, alice, queue, toDevice } = await setup(start);
    queue(alice, 2);

    const res = await toDevice(alice, { since: "999999" });

    expect(res.ext).toEqual({ next_batch: "999999", events: [] });
    expect(mock.state.toDevice.pendingCount(alice.userId, alice.deviceId)).toBe(2);
  });

  it("sends no to_device extension unless enabled", async () => {
    const { server, mock, alice, queue } = await setup(start);
    queue(alice, 1);
    const res = await slide(server, alice, { extensions: { to_device: { enabled: false, since: "1" } } });
    expect(res.body.extensions).toEqual({});
    expect(mock.state.toDevice.pendingCount(alice.userId, alice.deviceId)).toBe(1);
  });
});

/**
 * `limit: 0` on Synapse: `get_messages_for_device` (synapse/storage/databases/main/deviceinbox.py)
 * runs `LIMIT 0`, `rowcount == limit` holds, and it returns the head of the stream as `next_batch`.
 * The client's next `since` then deletes every message it never received.
 */
describe.each(transports)("sliding sync to_device limit: 0 (%s)", (transport) => {
  const start = harnessesOn(transport);

  it.each(["synapse-1.157", "synapse-1.156"] as const)(
    "%s: answers the head as next_batch, and that since deletes the undelivered messages",
    async (profile) => {
      const { mock, alice, queue, raw, pending } = await setup(start, { profile });
      queue(alice, 3);

      const zero = await raw(alice, { limit: 0 });
      const next = await raw(alice, { since: zero.ext!.next_batch });
      const later = await sync(alice);

      expect(zero.ext).toEqual({ next_batch: String(mock.state.toDevice.position), events: [] });
      expect(next.numbers).toEqual([]);
      expect(pending(alice)).toBe(0);
      expect(later.to_device?.events ?? []).toEqual([]);
    },
  );

  it.each([
    ["msc", [], [1, 2, 3]],
    // The limit is ignored, so everything comes at once.
    ["tuwunel", [1, 2, 3], []],
    ["continuwuity", [1, 2, 3], []],
  ] as const)("%s: loses nothing", async (profile, first, second) => {
    const { alice, queue, raw } = await setup(start, { profile });
    queue(alice, 3);

    const zero = await raw(alice, { limit: 0 });
    const next = await raw(alice, { pos: zero.pos, ...(zero.ext ? { since: zero.ext.next_batch } : {}) });

    expect([zero.numbers, next.numbers]).toEqual([first, second]);
  });

  it.each([true, false])("leaves classic /sync alone, which has no limit (flag %s)", async (flag) => {
    const { alice, queue } = await setup(start, { overrides: { toDeviceLimitZeroJumpsToHead: flag } });
    queue(alice, 3);

    const first = await sync(alice);
    const retried = await sync(alice);
    const acknowledged = await sync(alice, since(first.next_batch, "timeout=0"));

    const numbers = (body: typeof first) => body.to_device?.events.map((e) => e.content.n) ?? [];
    expect([numbers(first), numbers(retried), numbers(acknowledged)]).toEqual([[1, 2, 3], [1, 2, 3], []]);
  });
});

/** tuwunel's src/api/client/sync/v5/extensions/to_device.rs. */
describe.each(transports)("sliding sync to_device extension under tuwunel (%s)", (transport) => {
  const start = harnessesOn(transport);
  const tuwunel = { profile: "tuwunel" as ProfileName };

  it("omits the whole to_device object when there are no events", async () => {
    const { alice, queue, raw } = await setup(start, tuwunel);
    const empty = await raw(alice);
    queue(alice, 1);
    const one = await raw(alice, { pos: empty.pos });

    expect(empty.ext).toBeUndefined();
    expect(one.ext).toEqual({ next_batch: expect.stringMatching(/^\d+$/), events: [expect.anything()] });
  });

  it("ignores limit", async () => {
    const { alice, queue, raw } = await setup(start, tuwunel);
    queue(alice, 150);
    expect((await raw(alice, { limit: 2 })).numbers).toHaveLength(150);
  });

  it("uses the connection's pos as since when since is absent, deleting up to it", async () => {
    const { alice, queue, raw, pending } = await setup(start, tuwunel);
    queue(alice, 2);

    const first = await raw(alice);
    const withoutSince = await raw(alice, { pos: first.pos });

    expect(first.numbers).toEqual([1, 2]);
    expect(withoutSince.ext).toBeUndefined();
    expect(pending(alice)).toBe(0);
  });

  it("trusts a since that parses, and falls back to pos for one that does not", async () => {
    const { alice, queue, raw, pending } = await setup(start, tuwunel);
    queue(alice, 2);

    const first = await raw(alice);
    const fromZero = await raw(alice, { pos: first.pos, since: "0" });
    const garbled = await raw(alice, { pos: fromZero.pos, since: "not a number" });

    expect(fromZero.numbers).toEqual([1, 2]);
    expect(garbled.ext).toBeUndefined();
    expect(pending(alice)).toBe(0);
  });

  it("clamps a since from the future to the head: everything waiting is deleted", async () => {
    const { alice, queue, raw, pending } = await setup(start, tuwunel);
    queue(alice, 2);

    const res = await raw(alice, { since: "999999" });

    expect(res.ext).toBeUndefined();
    expect(pending(alice)).toBe(0);
  });
});

/** continuwuity's src/api/client/sync/v5.rs (`collect_to_device`, `commit_sync_collection`). */
describe.each(transports)("sliding sync to_device extension under continuwuity (%s)", (transport) => {
  const start = harnessesOn(transport);
  const continuwuity = { profile: "continuwuity" as ProfileName };

  it("ignores since: messages up to pos are deleted, whatever since says", async () => {
    const { alice, queue, raw, pending } = await setup(start, continuwuity);
    queue(alice, 2);

    const first = await raw(alice, { since: "999999" });
    const again = await raw(alice, { since: "999999" });
    const onPos = await raw(alice, { pos: again.pos, since: "0" });

    // Without pos nothing is acknowledged, even by a since ahead of the stream.
    expect([first.numbers, again.numbers]).toEqual([
      [1, 2],
      [1, 2],
    ]);
    expect(onPos.numbers).toEqual([]);
    expect(pending(alice)).toBe(0);
  });

  it("sends every waiting message whatever the limit", async () => {
    const { alice, queue, raw } = await setup(start, continuwuity);
    queue(alice, 150);
    expect((await raw(alice, { limit: 1 })).numbers).toHaveLength(150);
  });

  it("sends next_batch without events when there are none", async () => {
    const { alice, raw } = await setup(start, continuwuity);
    expect((await raw(alice)).ext).toEqual({ next_batch: expect.stringMatching(/^\d+$/) });
  });
});
