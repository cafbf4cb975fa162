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
  const fromAlice = (...ns: number[]) =>
    ns.map((n) => ({ type: "m.test", sender: alice.userId, content: { n } }));

  type Delivered = { type: string; sender: string; content: Record<string, unknown> }[];

  /** One sliding sync request with only the to_device extension, as bob's device. */
  async function slidingToDevice(since?: string): Promise<{ events: Delivered; nextBatch: string }> {
    const res = await call(h, "POST", SLIDING_SYNC_PATH, {
      token: bob.accessToken,
      body: { extensions: { to_device: { enabled: true, ...(since !== undefined ? { since } : {}) } } },
    });
    expect(res.status).toBe(200);
    const ext = (res.body.extensions as { to_device: { events: Delivered; next_batch: string } }).to_device;
    return { events: ext.events, nextBatch: ext.next_batch };
  }

  /**
   * Everything bob's device receives, as a client drains it: classic `/sync` (each `since`
   * acknowledging the previous response) or sliding sync's `to_device.since`, until a response
   * brings nothing.
   */
  async function drain(via: "sync" | "sliding sync"): Promise<Delivered> {
    const received: Delivered = [];
    let cursor: string | undefined;
    for (let round = 0; round < 10; round++) {
      let events: Delivered;
      if (via === "sync") {
        const query = cursor === undefined ? "?timeout=0" : `?timeout=0&since=${cursor}`;
        const res = await call(h, "GET", `/_matrix/client/v3/sync${query}`, { token: bob.accessToken });
        expect(res.status).toBe(200);
        events = (res.body.to_device as { events: Delivered } | undefined)?.events ?? [];
        cursor = res.body.next_batch as string;
      } else {
        ({ events, nextBatch: cursor } = await slidingToDevice(cursor));
      }
      if (events.length === 0) return received;
      received.push(...events);
    }
    throw new Error(`bob's device was still receiving after 10 ${via} responses`);
  }

  it.each(["sync", "sliding sync"] as const)(
    "returns every waiting event, oldest first, exactly as the device then receives them through %s",
    async (via) => {
      await send(3);

      const inbox = h.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId);

      expect(inbox.events).toEqual(fromAlice(1, 2, 3));
      expect(await drain(via)).toEqual(inbox.events);
    },
  );

  it("acknowledges nothing: reading twice gives the same events, and the device still receives each once", async () => {
    await send(2);

    const first = h.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId);
    const second = h.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId);
    const overHttp = await call(h, "GET", inboxPath(bob.userId, bob.deviceId));

    expect(second).toEqual(first);
    expect(overHttp.body).toEqual({ events: first.events, next_batch: first.nextBatch });
    expect(await drain("sync")).toEqual(fromAlice(1, 2));
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
    // A cursor from the middle acknowledges exactly the page before it.
    expect((await slidingToDevice(one.nextBatch)).events).toEqual(fromAlice(3, 4, 5, 6));
  });

  it("gives a nextBatch that sliding sync's to_device.since accepts to acknowledge exactly what was read", async () => {
    await send(2);
    const read = h.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId);
    await send(1, 3);

    const acknowledging = await slidingToDevice(read.nextBatch);
    const after = await slidingToDevice(acknowledging.nextBatch);

    // The two messages read are gone for the device; the later one arrives, once.
    expect(acknowledging.events).toEqual(fromAlice(3));
    expect(after.events).toEqual([]);
    expect(await drain("sync")).toEqual([]);
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
    it("answers {events, next_batch} with since and limit from the query, and takes nothing from the device", async () => {
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
      expect(h.homeserver.control.requestLog().some((e) => e.path.startsWith("/_mock/"))).toBe(false);

      // The same cursor as the in-process accessor, which sliding sync's since takes (above).
      expect(rest.body.next_batch).toBe(
        h.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId, {
          since: page.body.next_batch as string,
        }).nextBatch,
      );
      // The device still receives all three, in order and once.
      expect(await drain("sliding sync")).toEqual(fromAlice(1, 2, 3));
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
