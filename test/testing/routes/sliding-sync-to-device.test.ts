import { describe, expect, it } from "vitest";
import { MAX_TO_DEVICE_EVENTS_PER_RESPONSE } from "../../../src/testing/sync/sliding-to-device.js";
import { harnessesOn, type StartHarness, transports } from "../support/transports.js";
import { loginDevice, registerUser, type TestDevice } from "./e2ee-test-users.js";
import { extension, slide } from "./sliding-sync-helpers.js";

async function setup(start: StartHarness) {
  const server = await start();
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
  return { server, mock, alice, bob, queue, toDevice };
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
