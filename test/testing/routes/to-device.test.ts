import { describe, expect, it } from "vitest";
import { createMockHomeserver, ManualClock, type MockHomeserverOptions } from "../../../src/testing/index.js";
import { MAX_TO_DEVICE_CONTENT_BYTES } from "../../../src/testing/routes/to-device.js";
import { HTTP_TRANSACTION_TTL_MS } from "../../../src/testing/state/transaction-cache.js";
import { harnessesOn, type StartHarness, transports } from "../support/transports.js";
import { loginDevice, registerUser, send } from "./e2ee-test-users.js";

async function setup(start: StartHarness, options: MockHomeserverOptions = {}) {
  const server = await start(options);
  const mock = server.homeserver;
  const alice = await registerUser(server, "alice");
  const bob = await registerUser(server, "bob");
  const bobPhone = await loginDevice(server, "bob");
  const inbox = (d: { userId: string; deviceId: string }) =>
    mock.state.toDevice.inbox(d.userId, d.deviceId).map((e) => e.event);
  return { server, mock, alice, bob, bobPhone, inbox };
}

describe.each(transports)("PUT sendToDevice/{eventType}/{txnId} (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("delivers {type, sender, content} to the named device only", async () => {
    const { alice, bob, bobPhone, inbox } = await setup(start);

    const res = await alice.call("PUT", "sendToDevice/m.test/txn1", {
      messages: { [bob.userId]: { [bob.deviceId]: { hello: "laptop" } } },
    });

    expect(res).toEqual({ status: 200, body: {} });
    expect(inbox(bob)).toEqual([{ type: "m.test", sender: alice.userId, content: { hello: "laptop" } }]);
    expect(inbox(bobPhone)).toEqual([]);
  });

  it('expands a lone "*" to every device of the user, the sender\'s own included', async () => {
    const { server, alice, bob, bobPhone, inbox } = await setup(start);
    const aliceTablet = await loginDevice(server, "alice");

    await bob.call("PUT", "sendToDevice/m.test/t", {
      messages: { [alice.userId]: { "*": { n: 1 } }, [bob.userId]: { "*": { n: 2 } } },
    });

    expect(inbox(alice)).toEqual([{ type: "m.test", sender: bob.userId, content: { n: 1 } }]);
    expect(inbox(aliceTablet)).toEqual([{ type: "m.test", sender: bob.userId, content: { n: 1 } }]);
    expect(inbox(bob)).toEqual([{ type: "m.test", sender: bob.userId, content: { n: 2 } }]);
    expect(inbox(bobPhone)).toEqual([{ type: "m.test", sender: bob.userId, content: { n: 2 } }]);
  });

  it('treats "*" next to other device ids as an unknown device, as Synapse does', async () => {
    const { alice, bob, bobPhone, inbox } = await setup(start);

    await alice.call("PUT", "sendToDevice/m.test/t", {
      messages: { [bob.userId]: { "*": { n: "all" }, [bob.deviceId]: { n: "one" } } },
    });

    expect(inbox(bob).map((e) => e.content)).toEqual([{ n: "one" }]);
    expect(inbox(bobPhone)).toEqual([]);
  });

  it("drops messages for unknown devices, unknown users, malformed ids and other servers", async () => {
    const { mock, alice, bob, inbox } = await setup(start);

    const res = await alice.call("PUT", "sendToDevice/m.test/t", {
      messages: {
        [bob.userId]: { NOSUCHDEVICE: { n: 1 }, [bob.deviceId]: { n: 2 } },
        "@nobody:localhost": { "*": { n: 3 } },
        "not-a-user": { DEV: { n: 4 } },
        "@carol:elsewhere.example": { DEV: { n: 5 } },
      },
    });

    expect(res.status).toBe(200);
    expect(inbox(bob).map((e) => e.content)).toEqual([{ n: 2 }]);
    expect(mock.state.toDevice.pendingCount(bob.userId, "NOSUCHDEVICE")).toBe(0);
  });

  it("delivers a repeated transaction once, but the same txnId from another device or event type again", async () => {
    const { server, alice, bob, inbox } = await setup(start);
    const aliceTablet = await loginDevice(server, "alice");
    const body = { messages: { [bob.userId]: { [bob.deviceId]: { n: 1 } } } };

    const first = await alice.call("PUT", "sendToDevice/m.test/same", body);
    const repeat = await alice.call("PUT", "sendToDevice/m.test/same", body);
    await alice.call("PUT", "sendToDevice/m.other/same", body);
    await aliceTablet.call("PUT", "sendToDevice/m.test/same", body);

    expect(first).toEqual({ status: 200, body: {} });
    expect(repeat).toEqual({ status: 200, body: {} });
    expect(inbox(bob).map((e) => `${e.type} from ${e.sender}`)).toEqual([
      `m.test from ${alice.userId}`,
      `m.other from ${alice.userId}`,
      `m.test from ${alice.userId}`,
    ]);
  });

  it("refuses a message over 64 KiB with 413 M_TOO_LARGE, delivers none, and lets the txnId be retried", async () => {
    const { alice, bob, bobPhone, inbox } = await setup(start);
    const big = { blob: "x".repeat(MAX_TO_DEVICE_CONTENT_BYTES) };

    const tooLarge = await alice.call("PUT", "sendToDevice/m.test/retry", {
      messages: { [bob.userId]: { [bobPhone.deviceId]: { n: "small" }, [bob.deviceId]: big } },
    });
    const retried = await alice.call("PUT", "sendToDevice/m.test/retry", {
      messages: { [bob.userId]: { [bob.deviceId]: { n: "fixed" } } },
    });

    expect(tooLarge).toMatchObject({ status: 413, body: { errcode: "M_TOO_LARGE" } });
    expect(inbox(bobPhone)).toEqual([]);
    expect(retried.status).toBe(200);
    expect(inbox(bob).map((e) => e.content)).toEqual([{ n: "fixed" }]);
  });

  it.each([
    ["a body that is not JSON", "{", "M_NOT_JSON"],
    ["a body without messages", {}, "M_MISSING_PARAM"],
    ["messages that is a list", { messages: [] }, "M_BAD_JSON"],
    ["a message that is a string", { messages: { "@bob:localhost": { DEV: "hello" } } }, "M_BAD_JSON"],
  ])("answers %s with 400 %s and delivers nothing", async (_name, body, errcode) => {
    const { mock, alice, bob } = await setup(start);
    const res = await alice.call("PUT", "sendToDevice/m.test/bad", body);
    expect(res).toMatchObject({ status: 400, body: { errcode } });
    expect(mock.state.toDevice.position).toBe(0);
    expect(mock.state.toDevice.pendingCount(bob.userId, bob.deviceId)).toBe(0);
  });

  it("needs an access token", async () => {
    const { server } = await setup(start);
    const res = await send(server, "PUT", "sendToDevice/m.test/t", { body: { messages: {} } });
    expect(res).toMatchObject({ status: 401, body: { errcode: "M_MISSING_TOKEN" } });
  });

  it("drops the inbox of a deleted device", async () => {
    const { mock, alice, bob, bobPhone } = await setup(start);
    await alice.call("PUT", "sendToDevice/m.test/t", { messages: { [bob.userId]: { "*": { n: 1 } } } });

    await bob.call("DELETE", `devices/${bobPhone.deviceId}`, { auth: { type: "m.login.dummy" } });

    expect(mock.state.toDevice.pendingCount(bob.userId, bobPhone.deviceId)).toBe(0);
    expect(mock.state.toDevice.pendingCount(bob.userId, bob.deviceId)).toBe(1);
  });
});

/**
 * Synapse remembers a `sendToDevice` transaction only in its `HttpTransactionCache`
 * (synapse/rest/client/transactions.py), for 30 minutes (`CLEANUP_PERIOD`); a replay after that
 * is a new send. The mock forgets on its own clock.
 */
describe.each(transports)("sendToDevice transaction ids expire after 30 minutes (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("ignores a replay up to 30 minutes later and delivers one after that again", async () => {
    const clock = new ManualClock();
    const { alice, bob, inbox } = await setup(start, { clock });
    const body = { messages: { [bob.userId]: { [bob.deviceId]: { n: 1 } } } };
    const sendIt = () => alice.call("PUT", "sendToDevice/m.test/replayed", body);

    await sendIt();
    await clock.advance(HTTP_TRANSACTION_TTL_MS - 1);
    await sendIt();
    await clock.advance(1);
    await sendIt();
    const withinWindow = inbox(bob).length;
    await clock.advance(1);
    const late = await sendIt();

    expect(withinWindow).toBe(1);
    expect(late).toEqual({ status: 200, body: {} });
    expect(inbox(bob).map((e) => e.content)).toEqual([{ n: 1 }, { n: 1 }]);
  });

  it("counts a replay's window from the send, not from the replays", async () => {
    const clock = new ManualClock();
    const { alice, bob, inbox } = await setup(start, { clock });
    const body = { messages: { [bob.userId]: { [bob.deviceId]: {} } } };

    await alice.call("PUT", "sendToDevice/m.test/t", body);
    await clock.advance(20 * 60_000);
    await alice.call("PUT", "sendToDevice/m.test/t", body);
    await clock.advance(11 * 60_000);
    await alice.call("PUT", "sendToDevice/m.test/t", body);

    expect(inbox(bob)).toHaveLength(2);
  });
});

describe("sendToDevice transaction ids stay bounded over a long run (in-process)", () => {
  it("remembers only the last 30 minutes of 100,000 sends", async () => {
    const clock = new ManualClock();
    const hs = createMockHomeserver({ clock });
    const alice = hs.control.createUser("alice")!;
    const headers = new Headers({ authorization: `Bearer ${alice.accessToken}` });
    // To nobody, so only the transaction ids pile up.
    const body = new TextEncoder().encode('{"messages":{}}');
    const sends = 100_000;
    const perMinute = 1_000;
    let largest = 0;
    for (let i = 0; i < sends; i++) {
      // The transport-neutral core the in-process `fetch` wraps: the same route, without building
      // 100,000 `Request` and `Response` objects.
      const outcome = await hs.handle({
        method: "PUT",
        url: `/_matrix/client/v3/sendToDevice/m.test/txn-${i}`,
        headers,
        body,
      });
      if (outcome.kind !== "response" || outcome.status !== 200) throw new Error(`send ${i} failed`);
      if ((i + 1) % perMinute === 0) {
        largest = Math.max(largest, hs.state.toDevice.transactionCount);
        await clock.advance(60_000);
      }
    }
    const atEnd = hs.state.toDevice.transactionCount;
    await clock.advance(HTTP_TRANSACTION_TTL_MS + 1);

    // 30 minutes of sends, and the minute being sent: never near the 100,000 made.
    expect(largest).toBe(31 * perMinute);
    expect(atEnd).toBeLessThanOrEqual(31 * perMinute);
    expect(hs.state.toDevice.transactionCount).toBe(0);
  });
});
