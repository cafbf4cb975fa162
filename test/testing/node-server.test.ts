import { request } from "node:http";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type RunningMockServer, startMockServer } from "../../src/testing/index.js";

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

  it("closes while a slow request is in flight", async () => {
    running.homeserver.control.setFaults({ latencyMs: 5_000 });
    const pending = fetch(`${running.url}/_matrix/client/versions`).catch((e: unknown) => e);
    // The request is in flight once the mock has logged its start (it logs before the latency).
    await vi.waitFor(
      () =>
        expect(running.homeserver.control.requestLog()).toMatchObject([
          { path: "/_matrix/client/versions", status: null },
        ]),
      { interval: 1 },
    );
    const t0 = performance.now();
    await running.close();
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(await pending).toBeInstanceOf(TypeError);
    running = await startMockServer();
  });
});
