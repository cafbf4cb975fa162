import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SLIDING_SYNC_PATH } from "../../../src/testing/routes/sliding-sync.js";
import { call, type Harness, startHarness, transports } from "../support/transports.js";

describe.each(transports)("the to-device inbox accessor (%s)", (transport) => {
  let h: Harness;
  let alice: { userId: string; deviceId: string; accessToken: string };
  let bob: { userId: string; deviceId: string; accessToken: string };
  beforeEach(async () => {
    h = await startHarness(transport);
    alice = h.homeserver.control.createUser("alice")!;
    bob = h.homeserver.control.createUser("bob")!;
  });
  afterEach(async () => {
    await h.close();
  });

  /** Sends `count` messages from alice to bob's device over the API, numbered from `first`. */
  async function send(count: number, first = 1) {
    for (let n = first; n < first + count; n++) {
      const res = await call(h, "PUT", `/_matrix/client/v3/sendToDevice/m.test/txn-${n}`, {
        token: alice.accessToken,
        body: { messages: { [bob.userId]: { [bob.deviceId]: { n } } } },
      });
      expect(res.status).toBe(200);
    }
  }

  const numbers = (events: { content: Record<string, unknown> }[]) => events.map((e) => e.content.n);
  const inboxPath = (userId: string, deviceId: string, query = "") =>
    `/_mock/to_device/${encodeURIComponent(userId)}/${encodeURIComponent(deviceId)}${query}`;

  it("returns every waiting event, oldest first, as the device would receive it", async () => {
    await send(3);
    const inbox = h.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId);
    expect(inbox.events).toEqual(
      [1, 2, 3].map((n) => ({ type: "m.test", sender: alice.userId, content: { n } })),
    );
    expect(inbox.nextBatch).toBe(String(h.homeserver.state.toDevice.position));
  });

  it("acknowledges nothing: reading twice gives the same events", async () => {
    await send(2);
    const first = h.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId);
    const second = h.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId);
    expect(second).toEqual(first);
    expect(h.homeserver.state.toDevice.pendingCount(bob.userId, bob.deviceId)).toBe(2);
  });

  it("pages with limit and since, and the last nextBatch waits for later messages", async () => {
    await send(5);
    const one = h.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId, { limit: 2 });
    const two = h.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId, {
      since: one.nextBatch,
      limit: 2,
    });
    const three = h.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId, {
      since: two.nextBatch,
      limit: 2,
    });
    expect([numbers(one.events), numbers(two.events), numbers(three.events)]).toEqual([[1, 2], [3, 4], [5]]);

    const empty = h.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId, { since: three.nextBatch });
    expect(empty).toEqual({ events: [], nextBatch: three.nextBatch });
    await send(1, 6);
    expect(
      numbers(
        h.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId, { since: three.nextBatch }).events,
      ),
    ).toEqual([6]);
  });

  it("gives a nextBatch that sliding sync's to_device.since accepts to acknowledge what was read", async () => {
    await send(2);
    const read = h.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId);
    await send(1, 3);
    const res = await call(h, "POST", SLIDING_SYNC_PATH, {
      token: bob.accessToken,
      body: { extensions: { to_device: { enabled: true, since: read.nextBatch } } },
    });
    expect(res.status).toBe(200);
    expect(numbers(h.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId).events)).toEqual([3]);
  });

  it("throws RangeError for an unknown device and for a bad since or limit", () => {
    const control = h.homeserver.control;
    expect(() => control.toDeviceInbox(bob.userId, "NOSUCHDEVICE")).toThrow(RangeError);
    expect(() => control.toDeviceInbox("@nobody:localhost", bob.deviceId)).toThrow(RangeError);
    expect(() => control.toDeviceInbox(bob.userId, bob.deviceId, { since: "s12" })).toThrow(RangeError);
    expect(() => control.toDeviceInbox(bob.userId, bob.deviceId, { limit: -1 })).toThrow(RangeError);
    expect(() => control.toDeviceInbox(bob.userId, bob.deviceId, { limit: 0.5 })).toThrow(RangeError);
  });

  describe("GET /_mock/to_device/{userId}/{deviceId}", () => {
    it("answers {events, next_batch} with since and limit from the query", async () => {
      await send(3);
      const page = await call(h, "GET", inboxPath(bob.userId, bob.deviceId, "?limit=2"));
      expect(page.status).toBe(200);
      expect(numbers(page.body.events as { content: Record<string, unknown> }[])).toEqual([1, 2]);
      const rest = await call(
        h,
        "GET",
        inboxPath(bob.userId, bob.deviceId, `?since=${page.body.next_batch}`),
      );
      expect(numbers(rest.body.events as { content: Record<string, unknown> }[])).toEqual([3]);
      expect(rest.body.next_batch).toBe(String(h.homeserver.state.toDevice.position));
      expect(h.homeserver.state.toDevice.pendingCount(bob.userId, bob.deviceId)).toBe(3);
      expect(h.homeserver.control.requestLog().some((e) => e.path.startsWith("/_mock/"))).toBe(false);
    });

    it("answers 404 M_NOT_FOUND for an unknown device and 400 M_INVALID_PARAM for a bad query", async () => {
      const unknown = await call(h, "GET", inboxPath(bob.userId, "NOSUCHDEVICE"));
      expect(unknown.status).toBe(404);
      expect(unknown.body.errcode).toBe("M_NOT_FOUND");
      for (const query of ["?since=abc", "?limit=-1", "?limit=", "?limit=99999999999999999999"]) {
        const bad = await call(h, "GET", inboxPath(bob.userId, bob.deviceId, query));
        expect({ query, status: bad.status, errcode: bad.body.errcode }).toEqual({
          query,
          status: 400,
          errcode: "M_INVALID_PARAM",
        });
      }
    });
  });
});
