import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { isAbortError } from "../../src/errors/abort-error.js";
import { isNetworkError } from "../../src/errors/network-error.js";
import { createMatrixHttp } from "../../src/http/matrix-http.js";
import { matrixPath } from "../../src/http/path.js";

/**
 * The transport over a real socket with the platform's own fetch (undici in Node): what a
 * scripted fetch cannot show — real aborts, real dropped connections, real percent-encoding on the
 * wire. A plain node:http server keeps this independent of the mock homeserver.
 */

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;
const handlers: Handler[] = [];
const seen: { method: string; url: string; authorization: string | undefined; body: string }[] = [];
let server: Server;
let baseUrl: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        authorization: req.headers.authorization,
        body,
      });
      const handler = handlers.shift();
      if (!handler) {
        res.writeHead(500).end("unscripted");
        return;
      }
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const sendJson = (status: number, body: unknown) => (_req: IncomingMessage, res: ServerResponse) =>
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));

describe("the transport over a real socket", () => {
  it("sends token, encoded path, query and JSON body as a homeserver sees them", async () => {
    seen.length = 0;
    handlers.push(sendJson(200, { device_id: "dEv/ice+1" }));
    const http = createMatrixHttp({ baseUrl, accessToken: "syt_socket_test_token" });
    const result = await http.request({
      method: "PUT",
      path: matrixPath`/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/${"dEv/ice+1"}/events`,
      query: { limit: 5 },
      body: { next_batch: "d1" },
      schema: z.looseObject({ device_id: z.string() }),
    });
    expect(result).toEqual({ device_id: "dEv/ice+1" });
    expect(seen).toEqual([
      {
        method: "PUT",
        url: "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/dEv%2Fice%2B1/events?limit=5",
        authorization: "Bearer syt_socket_test_token",
        body: '{"next_batch":"d1"}',
      },
    ]);
  });

  it("retries a GET after the server drops the connection mid-response", async () => {
    seen.length = 0;
    handlers.push(
      (_req, res) => {
        res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
        res.write('{"user_id": "@al');
        res.socket?.destroy();
      },
      sendJson(200, { user_id: "@alice:hs.example" }),
    );
    const http = createMatrixHttp({ baseUrl, accessToken: "t0ken", retry: { baseDelayMs: 1 } });
    const retried: string[] = [];
    http.events.on("requestRetried", (e) => retried.push(e.outcome));
    await expect(
      http.request({ method: "GET", path: "/_matrix/client/v3/account/whoami", schema: z.unknown() }),
    ).resolves.toEqual({ user_id: "@alice:hs.example" });
    expect(retried).toEqual(["network"]);
    expect(seen).toHaveLength(2);
  });

  it("does not replay a keys/claim whose connection was dropped", async () => {
    seen.length = 0;
    handlers.push((req) => req.socket.destroy(), sendJson(200, { one_time_keys: {} }));
    const http = createMatrixHttp({ baseUrl, accessToken: "t0ken", retry: { baseDelayMs: 1 } });
    const error = await http
      .request({ method: "POST", path: "/_matrix/client/v3/keys/claim", body: {}, schema: z.unknown() })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isNetworkError(error)).toBe(true);
    expect(seen).toHaveLength(1);
    handlers.length = 0;
  });

  it("aborts a request in flight on a real connection", async () => {
    // Resolves when the server holds the request: the abort then hits a request on the wire.
    let received!: (release: () => void) => void;
    const held = new Promise<() => void>((resolve) => {
      received = resolve;
    });
    handlers.push((_req, res) => received(() => res.writeHead(200).end("{}")));
    const http = createMatrixHttp({ baseUrl, accessToken: "t0ken" });
    const controller = new AbortController();
    const pending = http
      .request({ method: "GET", path: "/slow", schema: z.unknown(), signal: controller.signal })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    const release = await held;
    controller.abort();
    expect(isAbortError(await pending)).toBe(true);
    release();
  });
});
