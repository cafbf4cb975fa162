import { describe, expect, it } from "vitest";
import { dehydrated, dehydratedDeviceId, putBody } from "./routes/dehydrated-device-helpers.js";
import { registerUser, type TestDevice } from "./routes/e2ee-test-users.js";
import { call, harnessesOn, transports } from "./support/transports.js";
import { outcomes, VERSIONS } from "./support/versions-outcomes.js";

/** Lost responses: the request is processed, then the connection is cut before the answer. */

/** Alice sends one to-device message `{n}` to Bob's device; resolves to the status or "dropped". */
async function sendOne(alice: TestDevice, bob: TestDevice, n: number): Promise<number | "dropped"> {
  try {
    const res = await alice.call("PUT", `sendToDevice/m.test/lost-${n}`, {
      messages: { [bob.userId]: { [bob.deviceId]: { n } } },
    });
    return res.status;
  } catch (err) {
    if (err instanceof TypeError) return "dropped";
    throw err;
  }
}

describe.each(transports)("lost responses (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("stores a to-device message although the sender only sees a network error", async () => {
    const h = await start();
    const alice = await registerUser(h, "alice");
    const bob = await registerUser(h, "bob");
    h.homeserver.control.setFaults({ lostResponseRate: 1 });

    expect(await sendOne(alice, bob, 1)).toBe("dropped");

    const inbox = h.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId);
    expect(inbox.events.map((e) => e.content)).toEqual([{ n: 1 }]);
    expect(h.homeserver.control.requestLog().at(-1)).toMatchObject({
      method: "PUT",
      status: null,
      dropped: true,
      fault: "random",
      faultKind: "lost-response",
      userId: alice.userId,
    });
  });

  it("replaces the dehydrated device although the PUT's answer is lost", async () => {
    const h = await start();
    const bob = await registerUser(h, "bob");
    const first = dehydratedDeviceId("first");
    const second = dehydratedDeviceId("second");
    expect((await dehydrated(h, bob, "PUT", "", putBody(bob, first, "first"))).status).toBe(200);
    h.homeserver.control.setFaults({ lostResponseRate: 1 });

    await expect(dehydrated(h, bob, "PUT", "", putBody(bob, second, "second"))).rejects.toBeInstanceOf(
      TypeError,
    );

    expect(h.homeserver.control.dehydratedDevice(bob.userId)?.deviceId).toBe(second);
    expect(h.homeserver.state.accounts.hasDevice(bob.userId, first)).toBe(false);
  });

  it("draws lost responses from the seed, in a band after the other random faults", async () => {
    const h = await start();
    const rates = { serverErrorRate: 0.25, rateLimitRate: 0.25, dropRate: 0.2 };
    h.homeserver.control.setFaults({ ...rates, seed: 42 });
    const without = await outcomes(h, 40);
    h.homeserver.control.setFaults({ lostResponseRate: 0.15, seed: 42 });
    const withLost = await outcomes(h, 40);
    h.homeserver.control.setFaults({ seed: 42 });
    const again = await outcomes(h, 40);

    expect(again).toEqual(withLost);
    // The same draws: every other fault stays where it was; some successes became lost responses.
    const changed = withLost.flatMap((o, i) => (o === without[i] ? [] : [[without[i], o]]));
    expect(changed.length).toBeGreaterThan(0);
    expect(new Set(changed.map((pair) => pair.join("→")))).toEqual(new Set(["200→dropped"]));
    const kinds = h.homeserver.control
      .requestLog()
      .slice(-40)
      .map((e) => e.faultKind);
    expect(kinds.filter((k) => k === "lost-response")).toHaveLength(changed.length);
    expect(new Set(kinds)).toEqual(new Set([undefined, "drop", "answer", "lost-response"]));
  });

  it("loses the next N matching answers when scripted when: after, drop: true", async () => {
    const h = await start();
    const alice = await registerUser(h, "alice");
    const bob = await registerUser(h, "bob");
    h.homeserver.control.scriptFailure({
      method: "PUT",
      path: "/_matrix/client/v3/sendToDevice/*",
      when: "after",
      drop: true,
      times: 2,
    });

    const results = [
      await sendOne(alice, bob, 1),
      await sendOne(alice, bob, 2),
      await sendOne(alice, bob, 3),
    ];

    expect(results).toEqual(["dropped", "dropped", 200]);
    const inbox = h.homeserver.control.toDeviceInbox(bob.userId, bob.deviceId);
    expect(inbox.events.map((e) => e.content)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(
      h.homeserver.control
        .requestLog()
        .slice(-3)
        .map((e) => [e.fault, e.faultKind]),
    ).toEqual([
      ["scripted", "lost-response"],
      ["scripted", "lost-response"],
      [undefined, undefined],
    ]);
  });

  it("is driven over HTTP: lost_response_rate, and fault_kind in /_mock/requests", async () => {
    const h = await start();
    const put = await call(h, "PUT", "/_mock/faults", { body: { lost_response_rate: 1 } });
    expect(put).toMatchObject({ status: 200, body: { lost_response_rate: 1, drop_rate: 0 } });
    expect((await call(h, "GET", "/_mock/faults")).body.lost_response_rate).toBe(1);

    await expect(h.fetch(`${h.url}${VERSIONS}`)).rejects.toBeInstanceOf(TypeError);

    const log = (await call(h, "GET", "/_mock/requests")).body.requests as Record<string, unknown>[];
    expect(log).toMatchObject([{ path: VERSIONS, status: null, dropped: true, fault_kind: "lost-response" }]);
    const tooMuch = await call(h, "PUT", "/_mock/faults", {
      body: { lost_response_rate: 0.5, drop_rate: 0.6 },
    });
    expect(tooMuch).toMatchObject({
      status: 400,
      body: {
        errcode: "M_INVALID_PARAM",
        error: "serverErrorRate + rateLimitRate + dropRate + lostResponseRate must not exceed 1",
      },
    });
    expect(() => h.homeserver.control.setFaults({ lostResponseRate: 1.5 })).toThrow(RangeError);
  });
});
