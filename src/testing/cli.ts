#!/usr/bin/env node
import { randomBytes } from "node:crypto";
import process from "node:process";
import { CLI_NAME, CLI_USAGE, parseCliArgs } from "./cli-args.js";
import { startMockServer } from "./node-server.js";

/**
 * `matrix-e2ee-mock-server --port 8008 …` (in this repo `npm run mock-server -- --port 8008 …`):
 * serves the mock homeserver until SIGINT/SIGTERM. The first stdout line is the base URL, printed
 * once the socket listens, so scripts can wait for it. The control API always has a token: the
 * one given with `--control-token`, or a random one printed on the second line.
 */
async function main(): Promise<number> {
  const parsed = parseCliArgs(process.argv.slice(2));
  if (parsed.ok === "help") {
    process.stdout.write(`${CLI_USAGE}\n`);
    return 0;
  }
  if (!parsed.ok) {
    process.stderr.write(`${parsed.error}\n${CLI_USAGE}\n`);
    return 2;
  }
  const { port, host, serverName, profile, seed } = parsed.options;
  // 256 random bits in base64url, which fits an `Authorization` header as it is.
  const controlToken = parsed.options.controlToken ?? randomBytes(32).toString("base64url");
  const running = await startMockServer({
    port,
    host,
    serverName,
    profile,
    controlToken,
    ...(seed !== undefined ? { seed } : {}),
  });
  process.stdout.write(`${running.url}\n`);
  if (parsed.options.controlToken === undefined) process.stdout.write(`control token: ${controlToken}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await running.close();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${CLI_NAME}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
