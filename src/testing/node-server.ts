import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { controlExposureError } from "./control-auth.js";
import { MockHomeserver, type MockHomeserverOptions } from "./mock-homeserver.js";

/**
 * The mock homeserver on a real socket (Node only; the core in mock-homeserver.ts never imports
 * `node:*`, so browsers can use it in-process).
 */
export interface StartMockServerOptions extends MockHomeserverOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /**
   * Default `127.0.0.1`. Any host but `127.0.0.1`, `::1` and `localhost` needs a `controlToken`
   * (here or on `homeserver`): otherwise the server refuses to start.
   */
  host?: string;
  /** Serve an existing homeserver instead of creating one from the options. */
  homeserver?: MockHomeserver;
}

export interface RunningMockServer {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  port: number;
  homeserver: MockHomeserver;
  /**
   * Stops listening and cuts open connections (including long-polls); for a homeserver it created
   * (no `homeserver` option), also cancels its background work (`MockHomeserver.dispose`).
   */
  close(): Promise<void>;
}

export async function startMockServer(options: StartMockServerOptions = {}): Promise<RunningMockServer> {
  const host = options.host ?? "127.0.0.1";
  // A given homeserver brings its own token; the options' one would not apply to it.
  const token = options.homeserver ? options.homeserver.controlToken : options.controlToken;
  const exposed = controlExposureError(host, token);
  if (exposed !== undefined) throw new Error(exposed);
  const homeserver = options.homeserver ?? new MockHomeserver(options);
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    void serve(homeserver, req, res);
  });
  // Node closes an idle keep-alive socket after 5 s, while a client's pool may pick it up in the
  // same instant and see "other side closed" on a request that never reached the mock. Real
  // homeservers sit behind proxies that keep idle sockets far longer (nginx: 75 s), so the mock does
  // too, and a test's idle pause never turns into a network error.
  server.keepAliveTimeout = 75_000;
  server.headersTimeout = 80_000;
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  if (options.baseUrl === undefined && options.homeserver === undefined) homeserver.baseUrl = url;
  return {
    url,
    port,
    homeserver,
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (!options.homeserver) homeserver.dispose();
        server.close((err) => (err ? reject(err) : resolve()));
        for (const socket of sockets) socket.destroy();
      }),
  };
}

async function serve(homeserver: MockHomeserver, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const abort = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) abort.abort(new Error("client went away"));
  });
  try {
    const { body, tooLarge } = await readBody(req, homeserver.profile.maxRequestBodyBytes);
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
    }
    const outcome = await homeserver.handle({
      method: req.method ?? "GET",
      url: req.url ?? "/",
      headers,
      body,
      bodyTooLarge: tooLarge,
      remoteAddress: req.socket.remoteAddress ?? "",
      signal: abort.signal,
    });
    if (outcome.kind === "drop") {
      req.socket.destroy();
      return;
    }
    // After refusing an over-large body the rest of it may still be arriving: close the connection.
    res.writeHead(outcome.status, tooLarge ? { ...outcome.headers, Connection: "close" } : outcome.headers);
    res.end(req.method === "HEAD" ? undefined : outcome.body);
  } catch {
    // Aborted by the client: nothing left to answer.
    if (!res.headersSent) req.socket.destroy();
  }
}

/** Reads at most `limit` bytes; an announced or actual larger body is reported, not buffered. */
async function readBody(
  req: IncomingMessage,
  limit: number,
): Promise<{ body: Uint8Array | null; tooLarge: boolean }> {
  const announced = Number(req.headers["content-length"] ?? Number.NaN);
  if (announced > limit) {
    req.resume();
    return { body: null, tooLarge: true };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) tooLarge = true;
    else chunks.push(chunk);
  }
  if (tooLarge) return { body: null, tooLarge };
  if (
    size === 0 &&
    req.headers["content-length"] === undefined &&
    req.headers["transfer-encoding"] === undefined
  ) {
    return { body: null, tooLarge: false };
  }
  return { body: new Uint8Array(Buffer.concat(chunks)), tooLarge: false };
}
