import { describe, expect, it } from "vitest";
import type { ProfileName, ProfileOverrides } from "../../../src/testing/index.js";
import { harnessesOn, type StartHarness, transports } from "../support/transports.js";
import {
  dehydrated,
  dehydratedDeviceId,
  enqueueMessages,
  eventsPath,
  numbers,
  putBody,
  type Reply,
  sendToDevice,
} from "./dehydrated-device-helpers.js";
import { registerUser } from "./e2ee-test-users.js";

/** Bob has a dehydrated device; Alice sends it messages `{n}`. */
async function setup(start: StartHarness, profile: ProfileName, overrides: ProfileOverrides = {}) {
  const server = await start({ profile, overrides });
  const mock = server.homeserver;
  const alice = await registerUser(server, "alice");
  const bob = await registerUser(server, "bob");
  const deviceId = dehydratedDeviceId("events");
  const put = await dehydrated(server, bob, "PUT", "", putBody(bob, deviceId));
  if (put.status !== 200) throw new Error(`PUT failed: ${put.status}`);
  const target = { userId: bob.userId, deviceId };
  const get = (query = "") => dehydrated(server, bob, "GET", eventsPath(deviceId, query));
  const post = (body: unknown = {}, query = "") =>
    dehydrated(server, bob, "POST", eventsPath(deviceId, query), body);
  return { server, mock, alice, bob, deviceId, target, get, post };
}

/** Follows `next_batch` with GET until it is absent; returns every page. */
async function drainGet(fetchPage: (query: string) => Promise<Reply>, limit?: number): Promise<Reply[]> {
  const pages: Reply[] = [];
  let from: string | undefined;
  for (let i = 0; i < 1000; i++) {
    const params = new URLSearchParams();
    if (from !== undefined) params.set("from", from);
    if (limit !== undefined) params.set("limit", String(limit));
    const page = await fetchPage(params.size > 0 ? `?${params}` : "");
    expect(page.status).toBe(200);
    pages.push(page);
    if (page.body.next_batch === undefined) return pages;
    from = page.body.next_batch as string;
  }
  throw new Error("GET drain did not end");
}

/** Follows `next_batch` with POST until an empty page or no `next_batch`; returns every page. */
async function drainPost(fetchPage: (body: unknown) => Promise<Reply>): Promise<Reply[]> {
  const pages: Reply[] = [];
  let nextBatch: string | undefined;
  for (let i = 0; i < 1000; i++) {
    const page = await fetchPage(nextBatch === undefined ? {} : { next_batch: nextBatch });
    expect(page.status).toBe(200);
    pages.push(page);
    if ((page.body.events as unknown[]).length === 0 || page.body.next_batch === undefined) return pages;
    nextBatch = page.body.next_batch as string;
  }
  throw new Error("POST drain did not end");
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe.each(transports)("synapse-1.157: GET …/events?from=&limit= (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("pages 100 at a time by default with d<stream id> tokens and no next_batch on the last page", async () => {
    const s = await setup(start, "synapse-1.157");
    enqueueMessages(s.mock, s.alice.userId, s.target, 250);

    const pages = await drainGet(s.get);

    expect(pages.map((p) => (p.body.events as unknown[]).length)).toEqual([100, 100, 50]);
    expect(pages.map((p) => p.body.next_batch)).toEqual([
      expect.stringMatching(/^d\d+$/),
      expect.stringMatching(/^d\d+$/),
      undefined,
    ]);
    expect(pages.flatMap((p) => numbers(p.body))).toEqual(range(1, 250));
  });

  it("returns events as {type, sender, content}", async () => {
    const s = await setup(start, "synapse-1.157");
    await sendToDevice(s.alice, s.target, 1);

    const page = await s.get();

    expect(page.body).toEqual({
      events: [{ type: "m.room.encrypted", sender: s.alice.userId, content: { n: 1 } }],
    });
  });

  it("honours limit with no upper cap", async () => {
    const s = await setup(start, "synapse-1.157");
    enqueueMessages(s.mock, s.alice.userId, s.target, 1500);

    const small = await drainGet(s.get, 7);
    const huge = await s.get("?limit=100000");

    expect(small).toHaveLength(Math.ceil(1500 / 7));
    expect(numbers(huge.body)).toEqual(range(1, 1500));
    expect(huge.body.next_batch).toBeUndefined();
  });

  for (const limit of ["abc", "-1", "1.5"]) {
    it(`refuses limit=${limit} with 400 M_INVALID_PARAM`, async () => {
      const s = await setup(start, "synapse-1.157");

      const res = await s.get(`?limit=${limit}`);

      expect(res).toMatchObject({ status: 400, body: { errcode: "M_INVALID_PARAM" } });
    });
  }

  for (const from of ["5", "x5", "dabc", "d"]) {
    it(`refuses the malformed token ${JSON.stringify(from)} with 400 M_INVALID_PARAM`, async () => {
      const s = await setup(start, "synapse-1.157");

      const res = await s.get(`?from=${from}`);

      expect(res).toMatchObject({ status: 400, body: { errcode: "M_INVALID_PARAM" } });
    });
  }

  it("reads an empty from as the start", async () => {
    const s = await setup(start, "synapse-1.157");
    enqueueMessages(s.mock, s.alice.userId, s.target, 3);

    const page = await s.get("?from=");

    expect(numbers(page.body)).toEqual([1, 2, 3]);
  });

  it("omits next_batch on an exactly full last page when its last message is the server's newest", async () => {
    const s = await setup(start, "synapse-1.157");
    enqueueMessages(s.mock, s.alice.userId, s.target, 4);

    const pages = await drainGet(s.get, 2);

    expect(pages.map((p) => numbers(p.body))).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });

  it("ends with an empty page without next_batch when a full page is followed only by other devices' messages", async () => {
    const s = await setup(start, "synapse-1.157");
    enqueueMessages(s.mock, s.alice.userId, s.target, 4);
    await sendToDevice(s.alice, { userId: s.bob.userId, deviceId: s.bob.deviceId }, 1);

    const pages = await drainGet(s.get, 2);

    expect(pages.map((p) => numbers(p.body))).toEqual([[1, 2], [3, 4], []]);
    expect(pages.at(-1)!.body.next_batch).toBeUndefined();
  });

  it("limit=0 returns an empty page without next_batch although messages wait (Synapse's rule)", async () => {
    const s = await setup(start, "synapse-1.157");
    enqueueMessages(s.mock, s.alice.userId, s.target, 3);

    const page = await s.get("?limit=0");

    expect(page.body).toEqual({ events: [] });
  });

  it("if-full: an exactly full last page is always followed by an empty page without next_batch", async () => {
    const s = await setup(start, "synapse-1.157", { dehydratedGetNextBatch: "if-full" });
    enqueueMessages(s.mock, s.alice.userId, s.target, 4);

    const pages = await drainGet(s.get, 2);

    expect(pages.map((p) => numbers(p.body))).toEqual([[1, 2], [3, 4], []]);
  });

  it("if-more: no empty page, even when other devices' messages follow", async () => {
    const s = await setup(start, "synapse-1.157", { dehydratedGetNextBatch: "if-more" });
    enqueueMessages(s.mock, s.alice.userId, s.target, 4);
    await sendToDevice(s.alice, { userId: s.bob.userId, deviceId: s.bob.deviceId }, 1);

    const pages = await drainGet(s.get, 2);

    expect(pages.map((p) => numbers(p.body))).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });
});

describe.each(transports)("the POST variant (Synapse ≤ 1.157) (%s)", (transport) => {
  const start = harnessesOn(transport);

  for (const profile of ["synapse-1.157", "synapse-1.156"] as const) {
    it(`${profile}: always returns next_batch; the end is an empty page whose token stays put`, async () => {
      const s = await setup(start, profile);
      enqueueMessages(s.mock, s.alice.userId, s.target, 150);

      const pages = await drainPost(s.post);
      const again = await s.post({ next_batch: pages.at(-1)!.body.next_batch });

      expect(pages.map((p) => (p.body.events as unknown[]).length)).toEqual([100, 50, 0]);
      for (const p of pages) expect(p.body.next_batch).toMatch(/^d\d+$/);
      expect(pages.flatMap((p) => numbers(p.body))).toEqual(range(1, 150));
      expect(again.body).toEqual(pages.at(-1)!.body);
    });
  }

  it("reads limit from the query string on POST too", async () => {
    const s = await setup(start, "synapse-1.156");
    enqueueMessages(s.mock, s.alice.userId, s.target, 5);

    const page = await s.post({}, "?limit=2");

    expect(numbers(page.body)).toEqual([1, 2]);
  });

  it("refuses a missing body (M_NOT_JSON) and a next_batch that is not a string (M_BAD_JSON)", async () => {
    const s = await setup(start, "synapse-1.157");

    const noBody = await dehydrated(s.server, s.bob, "POST", eventsPath(s.deviceId));
    const numeric = await s.post({ next_batch: 5 });
    const malformed = await s.post({ next_batch: "s5" });

    expect(noBody).toMatchObject({ status: 400, body: { errcode: "M_NOT_JSON" } });
    expect(numeric).toMatchObject({ status: 400, body: { errcode: "M_BAD_JSON" } });
    expect(malformed).toMatchObject({ status: 400, body: { errcode: "M_INVALID_PARAM" } });
  });

  it("accepts next_batch: null as the start", async () => {
    const s = await setup(start, "synapse-1.157");
    enqueueMessages(s.mock, s.alice.userId, s.target, 2);

    const page = await s.post({ next_batch: null });

    expect(numbers(page.body)).toEqual([1, 2]);
  });

  it("synapse-1.156 has no GET variant: 405 M_UNRECOGNIZED", async () => {
    const s = await setup(start, "synapse-1.156");

    const res = await s.get();

    expect(res).toMatchObject({ status: 405, body: { errcode: "M_UNRECOGNIZED" } });
  });
});

describe.each(transports)("tuwunel: POST, pages of 50 (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("pages 50 at a time with decimal tokens and omits next_batch only on the empty page", async () => {
    const s = await setup(start, "tuwunel");
    enqueueMessages(s.mock, s.alice.userId, s.target, 120);

    const pages = await drainPost(s.post);

    expect(pages.map((p) => (p.body.events as unknown[]).length)).toEqual([50, 50, 20, 0]);
    expect(pages.map((p) => p.body.next_batch)).toEqual([
      expect.stringMatching(/^\d+$/),
      expect.stringMatching(/^\d+$/),
      expect.stringMatching(/^\d+$/),
      undefined,
    ]);
    expect(pages.flatMap((p) => numbers(p.body))).toEqual(range(1, 120));
  });

  it("ignores limit and treats an empty body as {}", async () => {
    const s = await setup(start, "tuwunel");
    enqueueMessages(s.mock, s.alice.userId, s.target, 60);

    const page = await dehydrated(s.server, s.bob, "POST", eventsPath(s.deviceId, "?limit=2"));

    expect(page.status).toBe(200);
    expect(numbers(page.body)).toEqual(range(1, 50));
  });

  it("answers 500 M_UNKNOWN to a token that is not a number", async () => {
    const s = await setup(start, "tuwunel");

    const res = await s.post({ next_batch: "d5" });

    expect(res).toMatchObject({ status: 500, body: { errcode: "M_UNKNOWN" } });
  });

  it("has no GET variant: 405 M_UNRECOGNIZED", async () => {
    const s = await setup(start, "tuwunel");

    const res = await s.get();

    expect(res).toMatchObject({ status: 405, body: { errcode: "M_UNRECOGNIZED" } });
  });

  it("has no GET variant: a bare 405 when the server's 405 carries no error body", async () => {
    const s = await setup(start, "tuwunel", { wrongMethodHasErrorBody: false });

    const res = await s.get();

    expect(res.status).toBe(405);
    expect(res.text).toBe("");
  });
});

describe.each(transports)("msc: GET only (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("drains with GET and answers POST with 405", async () => {
    const s = await setup(start, "msc");
    enqueueMessages(s.mock, s.alice.userId, s.target, 101);

    const pages = await drainGet(s.get);
    const post = await s.post({});

    expect(pages.map((p) => numbers(p.body).length)).toEqual([100, 1]);
    expect(post).toMatchObject({ status: 405, body: { errcode: "M_UNRECOGNIZED" } });
  });

  it("carries next_batch exactly when more messages follow, whatever other devices receive", async () => {
    const s = await setup(start, "msc");
    enqueueMessages(s.mock, s.alice.userId, s.target, 4);
    await sendToDevice(s.alice, { userId: s.bob.userId, deviceId: s.bob.deviceId }, 1);

    const pages = await drainGet(s.get, 2);

    expect(pages.map((p) => numbers(p.body))).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });
});

describe.each(transports)("who may read the events (%s)", (transport) => {
  const start = harnessesOn(transport);

  for (const [profile, variant] of [
    ["synapse-1.157", "GET"],
    ["synapse-1.157", "POST"],
    ["tuwunel", "POST"],
    ["msc", "GET"],
  ] as const) {
    it(`${profile} ${variant}: 403 M_FORBIDDEN for another device id, and for a user without a dehydrated device`, async () => {
      const s = await setup(start, profile);
      const call = (who: typeof s.bob, deviceId: string) =>
        dehydrated(s.server, who, variant, eventsPath(deviceId), variant === "POST" ? {} : undefined);

      const wrongId = await call(s.bob, s.bob.deviceId);
      const foreign = await call(s.alice, s.deviceId);

      expect(wrongId).toMatchObject({ status: 403, body: { errcode: "M_FORBIDDEN" } });
      expect(foreign).toMatchObject({ status: 403, body: { errcode: "M_FORBIDDEN" } });
    });
  }

  it("checks the device before the token, as Synapse does", async () => {
    const s = await setup(start, "synapse-1.157");

    const res = await dehydrated(s.server, s.bob, "GET", eventsPath("OTHER", "?from=garbage"));

    expect(res).toMatchObject({ status: 403, body: { errcode: "M_FORBIDDEN" } });
  });

  it("decodes the device id in the path: an id with '/' and '+' must be percent-encoded", async () => {
    const s = await setup(start, "synapse-1.157");
    enqueueMessages(s.mock, s.alice.userId, s.target, 1);

    const encoded = await s.get();
    const raw = await dehydrated(s.server, s.bob, "GET", `/${s.deviceId}/events`);

    expect(s.deviceId).toMatch(/[/+]/);
    expect(numbers(encoded.body)).toEqual([1]);
    expect(raw.status).toBe(404);
  });
});

describe.each(transports)("reading never deletes (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("a second drain sees every message again, and a saved token resumes where it left off", async () => {
    const s = await setup(start, "synapse-1.157");
    enqueueMessages(s.mock, s.alice.userId, s.target, 30);

    const first = await drainGet(s.get, 10);
    const second = await drainGet(s.get, 10);
    const resumed = await s.get(`?from=${first[1]!.body.next_batch}&limit=10`);

    expect(first.flatMap((p) => numbers(p.body))).toEqual(range(1, 30));
    expect(second.flatMap((p) => numbers(p.body))).toEqual(range(1, 30));
    expect(numbers(resumed.body)).toEqual(range(21, 30));
    expect(s.mock.state.toDevice.pendingCount(s.bob.userId, s.deviceId)).toBe(30);
  });

  it("a token stays valid and means the same place after more messages arrive", async () => {
    const s = await setup(start, "synapse-1.157");
    enqueueMessages(s.mock, s.alice.userId, s.target, 5);
    const first = await s.get("?limit=2");

    enqueueMessages(s.mock, s.alice.userId, s.target, 5, 6);
    const next = await s.get(`?from=${first.body.next_batch}&limit=3`);

    expect(numbers(next.body)).toEqual([3, 4, 5]);
  });

  it("messages that arrive during a drain are read by it", async () => {
    const s = await setup(start, "tuwunel");
    enqueueMessages(s.mock, s.alice.userId, s.target, 50);
    const first = await s.post({});

    await sendToDevice(s.alice, s.target, 2, 51);
    const rest = await drainPost((body) => s.post(body));
    const continued = await s.post({ next_batch: first.body.next_batch });

    expect(rest.flatMap((p) => numbers(p.body))).toEqual(range(1, 52));
    expect(numbers(continued.body)).toEqual([51, 52]);
  });
});

describe.each(transports)("cost of a page (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("reads only the page, however long the queue behind it", async () => {
    const s = await setup(start, "synapse-1.157");
    enqueueMessages(s.mock, s.alice.userId, s.target, 20_000);
    const first = await s.get("?limit=1");
    const midway = `d${s.mock.state.toDevice.position - 100}`;

    const before = s.mock.state.toDevice.workDone;
    const page = await s.get(`?from=${midway}&limit=10`);
    const work = s.mock.state.toDevice.workDone - before;

    expect(first.status).toBe(200);
    expect(numbers(page.body)).toEqual(range(19_901, 19_910));
    expect(work).toBe(10);
  });
});
