import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningMockServer, startMockServer } from "../../src/testing/index.js";
import { useBrowserSuite } from "./support/browser-suite.js";
import { buildPackedApp, type PackedApp } from "./support/packed-app.js";
import { openScenarioPage } from "./support/scenario-page.js";

/**
 * The published shape of the worker client: `npm pack`, a scratch app that imports
 * `createE2eeWorkerClient` from `matrix-e2ee-devices/worker`, bundled by `vite build` with its
 * defaults, served, and loaded in Chromium. The SDK's `new Worker(new URL("./browser-worker.js",
 * import.meta.url))` must survive the bundler: the worker (and crypto-wasm's `.wasm` inside it)
 * loads from the bundle, and the client talks to the mock homeserver.
 */

/** The scratch app's one scenario (its page is plain JavaScript: this is its shape). */
type PackedAppScenarios = {
  openClient(session: { baseUrl: string; userId: string; deviceId: string; accessToken: string }): Promise<{
    userId: string;
    deviceId: string;
    hasMaster: boolean;
    events: string[];
    badTrust: { name: string; code: string } | null;
  }>;
};

const browser = useBrowserSuite();
let server: RunningMockServer;
let app: PackedApp;

beforeAll(async () => {
  server = await startMockServer({ host: "127.0.0.1", port: 0 });
  app = await buildPackedApp();
}, 120_000);

afterAll(async () => {
  await app?.close();
  await server?.close();
});

describe("the packed package's worker client under a bundler (Vite build, Chromium)", () => {
  it("loads the worker from the bundle and opens a client against the mock", async () => {
    const created = server.homeserver.control.createUser("packed", { password: "a password" });
    if (created === undefined) throw new Error("the user exists");
    const page = await openScenarioPage<PackedAppScenarios>(browser.context, app.origin, "index");
    const result = await page.call("openClient", {
      baseUrl: server.url,
      userId: created.userId,
      deviceId: created.deviceId,
      accessToken: created.accessToken,
    });
    console.log(
      `[worker-packed] compile ${Math.round(app.timings.compile)} ms, pack ${Math.round(app.timings.pack)} ms, ` +
        `vite build ${Math.round(app.timings.bundle)} ms`,
    );
    expect(result).toMatchObject({ userId: created.userId, deviceId: created.deviceId, hasMaster: false });
    expect(result.events).toContain("crypto.keysUploaded");
    expect(result.badTrust).toEqual({ name: "SdkError", code: "invalid_argument" });
    // The worker script came from the bundle, not from some other server.
    const scripts = await page.page.evaluate(() =>
      performance.getEntriesByType("resource").map((e) => new URL(e.name).pathname),
    );
    expect(scripts.some((p) => /^\/assets\/browser-worker-[\w-]+\.js$/.test(p))).toBe(true);
    expect(page.problems).toEqual([]);
    await page.close();
  });
});
