import { startDemoServer } from "./server.js";

/**
 * `npm run demo`: serves the demo on 127.0.0.1 (port from `PORT`, default 5173) and prints its
 * URL. Ctrl-C stops it.
 */

function portFromEnv(value: string | undefined): number {
  if (value === undefined || value === "") return 5173;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    console.error(`PORT must be an integer from 0 to 65535, not "${value}"`);
    process.exit(2);
  }
  return port;
}

const port = portFromEnv(process.env.PORT);
const server = await startDemoServer({ port }).catch((error: unknown) => {
  console.error(
    `could not start the demo on port ${port}: ${error instanceof Error ? error.message : error}`,
  );
  console.error("set PORT to another port (0 picks a free one)");
  process.exit(1);
});
console.log(`matrix-e2ee-devices demo (embedded mock homeserver): ${server.url}`);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void server.close().then(() => process.exit(0));
  });
}
