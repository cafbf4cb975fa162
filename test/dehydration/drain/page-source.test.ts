import { describe, expect, it } from "vitest";
import { HttpDrainPageSource } from "../../../src/dehydration/drain/page-source.js";
import type { EventsVariant } from "../../../src/dehydration/drain/pagination.js";
import { apiError, FakeMatrixHttp } from "../../crypto/support/fake-matrix-http.js";

const deviceId = "Ab/c+d=";
const eventsPath = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/Ab%2Fc%2Bd%3D/events";
const anyEvents = /\/dehydrated_device\/[^/]+\/events$/;
const page = { events: [{ type: "m.room.encrypted", sender: "@a:x", content: {} }], next_batch: "d7" };

function request(cursor: string | undefined, limit = 500) {
  return { deviceId, cursor, limit, signal: new AbortController().signal };
}

describe("HttpDrainPageSource", () => {
  it("asks with GET ?from=&limit= first, on the URL-encoded device id, every page safe to repeat", async () => {
    const http = new FakeMatrixHttp().on("GET", anyEvents, () => page);
    const source = new HttpDrainPageSource(http);
    const result = await source.fetchPage(request("d3", 480));
    expect(result).toEqual({ events: page.events, nextBatch: "d7", variant: "get" });
    expect(source.variant).toBe("get");
    await source.fetchPage(request("d7", 480));
    expect(http.calls.map((c) => [c.method, c.path, c.query, c.retry])).toEqual([
      ["GET", eventsPath, { from: "d3", limit: "480" }, "safe"],
      ["GET", eventsPath, { from: "d7", limit: "480" }, "safe"],
    ]);
  });

  it("does not fall back to POST when the first GET fails transiently (the transport retried it)", async () => {
    const http = new FakeMatrixHttp()
      .on("GET", anyEvents, (call) => {
        throw apiError("GET", call.path, 503, { errcode: "M_UNKNOWN" });
      })
      .on("POST", anyEvents, () => page);
    const source = new HttpDrainPageSource(http);
    await expect(source.fetchPage(request(undefined))).rejects.toMatchObject({ status: 503 });
    expect(http.calls.map((c) => [c.method, c.retry])).toEqual([["GET", "safe"]]);
    expect(source.variant).toBeUndefined();
  });

  const fallbacks: [string, number, Record<string, unknown>][] = [
    ["Synapse's 405 M_UNRECOGNIZED", 405, { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" }],
    ["a bare 405", 405, {}],
    ["404 M_UNRECOGNIZED", 404, { errcode: "M_UNRECOGNIZED" }],
  ];
  for (const [what, status, body] of fallbacks) {
    it(`falls back to POST {next_batch} on ${what} and remembers it for later pages`, async () => {
      const learned: EventsVariant[] = [];
      const http = new FakeMatrixHttp()
        .on("GET", anyEvents, (call) => {
          throw apiError("GET", call.path, status, body);
        })
        .on("POST", anyEvents, () => page);
      const source = new HttpDrainPageSource(http, { onVariantLearned: (v) => learned.push(v) });
      expect(await source.fetchPage(request("d3"))).toMatchObject({ nextBatch: "d7", variant: "post" });
      await source.fetchPage(request("d7"));
      expect(http.calls.map((c) => [c.method, c.body])).toEqual([
        ["GET", undefined],
        ["POST", { next_batch: "d3" }],
        ["POST", { next_batch: "d7" }],
      ]);
      expect(http.calls.map((c) => c.retry)).toEqual(["safe", "safe", "safe"]);
      // Synapse's POST servlet reads `?limit=` too; ruma servers ignore it.
      expect(http.calls[1]!.query).toEqual({ limit: "500" });
      expect(learned).toEqual(["post"]);
    });
  }

  it("asks a server that refuses the limit again without it, and leaves it out from then on", async () => {
    const http = new FakeMatrixHttp().on("POST", anyEvents, (call) => {
      if (call.query?.limit !== undefined)
        throw apiError("POST", call.path, 400, { errcode: "M_INVALID_PARAM" });
      return page;
    });
    const source = new HttpDrainPageSource(http, { variant: "post" });
    expect(await source.fetchPage(request("d3"))).toMatchObject({ nextBatch: "d7" });
    await source.fetchPage(request("d7"));
    expect(http.calls.map((c) => c.query)).toEqual([{ limit: "500" }, {}, {}]);
  });

  it("keeps sending the limit when a 400 was about something else (it fails without it too)", async () => {
    let badToken = true;
    const http = new FakeMatrixHttp().on("POST", anyEvents, (call) => {
      if (badToken) throw apiError("POST", call.path, 400, { errcode: "M_INVALID_PARAM" });
      return page;
    });
    const source = new HttpDrainPageSource(http, { variant: "post" });
    await expect(source.fetchPage(request("junk"))).rejects.toMatchObject({ status: 400 });
    badToken = false;
    await source.fetchPage(request("d3"));
    expect(http.calls.map((c) => c.query)).toEqual([{ limit: "500" }, {}, { limit: "500" }]);
  });

  it("starts with the variant remembered from an earlier session", async () => {
    const http = new FakeMatrixHttp().on("POST", anyEvents, () => ({ events: [] }));
    const source = new HttpDrainPageSource(http, { variant: "post" });
    expect(await source.fetchPage(request(undefined))).toEqual({
      events: [],
      nextBatch: undefined,
      variant: "post",
    });
    expect(http.calls.map((c) => [c.method, c.body, c.retry])).toEqual([["POST", {}, "safe"]]);
  });

  it("passes on a 403 (not our device) without trying the other variant", async () => {
    const http = new FakeMatrixHttp().on("GET", anyEvents, (call) => {
      throw apiError("GET", call.path, 403, { errcode: "M_FORBIDDEN" });
    });
    await expect(new HttpDrainPageSource(http).fetchPage(request(undefined))).rejects.toMatchObject({
      status: 403,
    });
    expect(http.calls).toHaveLength(1);
  });

  it("passes on the POST variant's failure when the feature is off everywhere", async () => {
    const http = new FakeMatrixHttp();
    await expect(new HttpDrainPageSource(http).fetchPage(request(undefined))).rejects.toMatchObject({
      status: 404,
      errcode: "M_UNRECOGNIZED",
    });
    expect(http.calls.map((c) => c.method)).toEqual(["GET", "POST"]);
  });

  it("reads next_batch: null as the end and refuses a page without an events array", async () => {
    const http = new FakeMatrixHttp().on("GET", anyEvents, (call) =>
      call.query?.from === "bad" ? { next_batch: "d1" } : { events: [], next_batch: null },
    );
    const source = new HttpDrainPageSource(http);
    expect(await source.fetchPage(request("d1"))).toMatchObject({ nextBatch: undefined });
    await expect(source.fetchPage(request("bad"))).rejects.toMatchObject({ name: "MalformedResponseError" });
  });
});
