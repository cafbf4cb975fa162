import type { AddressInfo } from "node:net";
import { createServer } from "vite";
import { demoViteConfig } from "./vite-config.js";

export interface DemoServer {
  /** `http://127.0.0.1:<port>/`. */
  readonly url: string;
  close(): Promise<void>;
}

export interface StartDemoServerOptions {
  /** Default 5173; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1: the demo is for this machine only. */
  host?: string;
  /**
   * Default true: reload the page when a file of the demo or the SDK changes. Tests turn it off,
   * so an edit elsewhere in the tree cannot reload the page under them.
   */
  live?: boolean;
}

/** Starts the Vite dev server for the demo; the mock homeserver runs inside the page, not here. */
export async function startDemoServer(options: StartDemoServerOptions = {}): Promise<DemoServer> {
  const host = options.host ?? "127.0.0.1";
  const server = await createServer(
    demoViteConfig({ host, port: options.port ?? 5173, live: options.live ?? true }),
  );
  await server.listen();
  const address = server.httpServer?.address() as AddressInfo | string | null | undefined;
  if (address === null || address === undefined || typeof address !== "object") {
    await server.close();
    throw new Error("the demo's Vite server did not report a listening address");
  }
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return { url: `http://${shownHost}:${address.port}/`, close: () => server.close() };
}
