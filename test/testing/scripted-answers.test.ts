import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { call, type Harness, register, startHarness, transports } from "./support/transports.js";

/** Scripted failures that answer with a body of the test's choosing, 2xx included. */

const SYNC = "/_matrix/client/v3/sync";

async function raw(h: Harness, path: string, init: RequestInit = {}) {
  const res = await h.fetch(`${h.url}${path}`, init);
  return { status: res.status, type: res.headers.get("content-type"), text: await res.text() };
}

describe.each(transports)("scripted answers (%s)", (transport) => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness(transport);
  });
  afterEach(async () => {
    await h.close();
  });

  it("answers 200 with a malformed JSON body once, then serves normally", async () => {
    const alice = await register(h, "alice");
    const failure = h.homeserver.control.scriptFailure({
      method: "GET",
      path: SYNC,
      status: 200,
      body: { events: "nope" },
    });
    expect(failure).toMatchObject({ status: 200, body: { events: "nope" }, errcode: undefined });
    const auth = { headers: { Authorization: `Bearer ${alice.token}` } };

    const broken = await raw(h, `${SYNC}?timeout=0`, auth);
    const fine = await call(h, "GET", `${SYNC}?timeout=0`, { token: alice.token });

    expect(broken).toEqual({ status: 200, type: "application/json", text: '{"events":"nope"}' });
    expect(fine.status).toBe(200);
    expect(fine.body.next_batch).toEqual(expect.any(String));
    expect(h.homeserver.control.requestLog().slice(-2)).toMatchObject([
      { status: 200, errcode: undefined, fault: "scripted", faultKind: "answer" },
      { status: 200, fault: undefined, faultKind: undefined },
    ]);
  });

  it("sends a raw body that is not JSON at all, byte for byte", async () => {
    h.homeserver.control.scriptFailure({ path: "/_matrix/client/versions", status: 200, rawBody: '{"vers' });
    expect(await raw(h, "/_matrix/client/versions")).toMatchObject({ status: 200, text: '{"vers' });
  });

  it("replaces the answer of a processed request with the scripted body when: after", async () => {
    const alice = await register(h, "alice");
    const path = `/_matrix/client/v3/user/${alice.userId}/account_data/x`;
    h.homeserver.control.scriptFailure({
      method: "PUT",
      path,
      when: "after",
      status: 502,
      rawBody: "<html>",
    });

    const res = await raw(h, path, {
      method: "PUT",
      headers: { Authorization: `Bearer ${alice.token}` },
      body: JSON.stringify({ saved: true }),
    });

    expect(res).toMatchObject({ status: 502, text: "<html>" });
    expect(h.homeserver.state.accountData.get(alice.userId, "x")).toEqual({ saved: true });
    expect(h.homeserver.control.requestLog().at(-1)).toMatchObject({
      status: 502,
      errcode: undefined,
      faultKind: "replaced-response",
    });
  });

  it("is scripted over HTTP with body and raw_body, and listed with them", async () => {
    const json = await call(h, "POST", "/_mock/failures", {
      body: { method: "GET", path: "/_matrix/client/versions", status: 200, body: { versions: 5 } },
    });
    const text = await call(h, "POST", "/_mock/failures", {
      body: { path: "/_matrix/client/versions", status: 204, raw_body: "" },
    });

    expect(json.body).toMatchObject({ status: 200, body: { versions: 5 }, raw_body: null, errcode: null });
    expect(text.body).toMatchObject({ status: 204, body: null, raw_body: "", error: null });
    expect((await call(h, "GET", "/_mock/failures")).body.failures).toHaveLength(2);
    expect(await raw(h, "/_matrix/client/versions")).toMatchObject({ status: 200, text: '{"versions":5}' });
    expect(await raw(h, "/_matrix/client/versions")).toMatchObject({ status: 204, text: "" });
    const log = (await call(h, "GET", "/_mock/requests")).body.requests as Record<string, unknown>[];
    expect(log.map((e) => [e.status, e.fault_kind])).toEqual([
      [200, "answer"],
      [204, "answer"],
    ]);
  });

  it("refuses a 2xx without a body, and bodies that contradict the rest of the spec", async () => {
    const control = h.homeserver.control;
    const bad = [
      [{ path: SYNC, status: 200 }, "a 2xx status needs body or rawBody"],
      [{ path: SYNC, status: 302, body: {} }, "status must be 200-299 or 400-599"],
      [{ path: SYNC, body: {}, rawBody: "x" }, "body and rawBody exclude each other"],
      [
        { path: SYNC, body: {}, errcode: "M_X" },
        "errcode, error and retryAfterMs do not apply with body or rawBody",
      ],
      [{ path: SYNC, drop: true, rawBody: "x" }, "a dropped connection has no body"],
      [{ path: SYNC, body: { n: 1n } }, "body must be JSON-serialisable"],
    ] as const;
    for (const [spec, message] of bad)
      expect(() => control.scriptFailure(spec)).toThrow(new RangeError(message));

    const overHttp = await call(h, "POST", "/_mock/failures", { body: { path: SYNC, status: 200 } });
    const mixed = await call(h, "POST", "/_mock/failures", {
      body: { path: SYNC, status: 200, body: {}, raw_body: "" },
    });

    expect(overHttp).toMatchObject({
      status: 400,
      body: { errcode: "M_INVALID_PARAM", error: "a 2xx status needs body or rawBody" },
    });
    expect(mixed.body).toMatchObject({
      errcode: "M_INVALID_PARAM",
      error: "body and rawBody exclude each other",
    });
    expect(control.scriptedFailures()).toEqual([]);
  });
});
