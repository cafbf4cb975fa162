import { request } from "node:http";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ManualClock, type RunningMockServer, startMockServer } from "../../src/testing/index.js";

describe("startMockServer", () => {
  let running: RunningMockServer;
  beforeEach(async () => {
    running = await startMockServer({ overrides: { maxRequestBodyBytes: 1024 } });
  });
  afterEach(async () => {
    await running.close();
  });

  it("listens on a free port and reports it in the URL", () => {
    expect(running.port).toBeGreaterThan(0);
    expect(running.url).toBe(`http://127.0.0.1:${running.port}`);
    expect(running.homeserver.baseUrl).toBe(running.url);
  });

  it("refuses a chunked body that grows past the limit with 413 M_TOO_LARGE", async () => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(new Uint8Array(512).fill(0x20));
        controller.close();
      },
    });
    const res = await fetch(`${running.url}/_matrix/client/v3/keys/upload`, {
      method: "POST",
      body,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { errcode: string }).errcode).toBe("M_TOO_LARGE");
  });

  it("destroys the socket for a dropped connection", async () => {
    running.homeserver.control.scriptFailure({ path: "/_matrix/client/versions", drop: true });
    const error = await new Promise<NodeJS.ErrnoException>((resolve, reject) => {
      const req = request(`${running.url}/_matrix/client/versions`, (res) =>
        reject(new Error(`got ${res.statusCode}`)),
      );
      req.on("error", resolve);
      req.end();
    });
    expect(error.code).toBe("ECONNRESET");
  });

  it("closes with a request in flight: close() resolves, the request is cut, the port is shut", async () => {
    // The server's clock never moves, so the request can end only if close() cuts its connection.
    const clock = new ManualClock();
    const parked = await startMockServer({ clock });
    parked.homeserver.control.setFaults({ latencyMs: 1_000 });
    const pending = fetch(`${parked.url}/_matrix/client/versions`).then(
      (res) => res.status,
      (e: unknown) => e,
    );
    // In flight: the mock has logged its start and waits out the latency on its clock.
    await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1), { interval: 1 });

    await parked.close();

    expect(await pending).toBeInstanceOf(TypeError);
    // The server hears of the cut connection a moment later: its wait is released, logged as dropped.
    await vi.waitFor(() => expect(clock.pendingSleeps).toBe(0), { interval: 1 });
    expect(parked.homeserver.control.requestLog()).toMatchObject([
      { path: "/_matrix/client/versions", status: null, dropped: true },
    ]);
    // Nobody is listening any more.
    const refused = await fetch(`${parked.url}/_matrix/client/versions`).catch((e: unknown) => e);
    expect((refused as Error & { cause?: { code?: string } }).cause?.code).toBe("ECONNREFUSED");
  });
});
