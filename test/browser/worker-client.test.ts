import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningMockServer, startMockServer } from "../../src/testing/index.js";
import type { WorkerClientScenarios, WorkerSession } from "./pages/worker-client.js";
import { useBrowserSuite } from "./support/browser-suite.js";

/**
 * `createE2eeWorkerClient` (src/worker/browser.ts) in a real Chromium: the client runs in a module
 * Web Worker the SDK starts itself, against the mock homeserver in this Node process over HTTP.
 */

const browser = useBrowserSuite();
let server: RunningMockServer;
let users = 0;

beforeAll(async () => {
  server = await startMockServer({ host: "127.0.0.1", port: 0 });
});
afterAll(async () => {
  await server?.close();
});

function newUser(prefix: string): WorkerSession {
  users += 1;
  const created = server.homeserver.control.createUser(`${prefix}${users}`, { password: "a password" });
  if (created === undefined) throw new Error("the user exists");
  return {
    baseUrl: server.url,
    userId: created.userId,
    deviceId: created.deviceId,
    accessToken: created.accessToken,
  };
}

describe("createE2eeWorkerClient in a Web Worker (Chromium)", () => {
  it("bootstraps cross-signing, forwards events, rebuilds SdkErrors, hides keys, and closes", async () => {
    const page = await browser.openPage<WorkerClientScenarios>("worker-client");
    const session = newUser("alice");
    const result = await page.call("bootstrapAndClose", session);

    expect(result.ids).toEqual({ userId: session.userId, deviceId: session.deviceId });
    expect(result.events).toContain("crypto.keysUploaded");
    expect(result.hasMaster).toBe(true);
    expect(result.recoveryKeyShape).toBe(true);
    expect(result.trustBob).toEqual({ state: "unknown", userId: "@bob:localhost" });
    expect(result.badTrust).toMatchObject({ name: "SdkError", code: "invalid_argument", isSdkError: true });

    expect(result.keyLength).toBe(32);
    // As on the thread that made it (bootstrap returns a plain `SecretStorageKey`).
    expect(result.printed.string).toBe(`SecretStorageKey(${result.keyId})`);
    expect(result.printed.template).toBe(result.printed.string);
    expect(JSON.parse(result.printed.json)).toEqual({ keyId: result.keyId });
    expect(result.printedHoldsBytes).toBe(false);

    expect(result.afterClose).toMatchObject({ name: "SdkError", code: "client_closed", isSdkError: true });
    // The server saw the device's keys and the cross-signing upload from the worker.
    const log = server.homeserver.control.requestLog().filter((e) => e.userId === session.userId);
    expect(log.some((e) => e.path === "/_matrix/client/v3/keys/upload" && e.status === 200)).toBe(true);
    expect(
      log.some((e) => e.path === "/_matrix/client/v3/keys/device_signing/upload" && e.status === 200),
    ).toBe(true);
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("refuses a second worker on the same crypto store with crypto_store_in_use, until the first closes", async () => {
    const page = await browser.openPage<WorkerClientScenarios>("worker-client");
    const session = newUser("carol");
    const store = `worker-store-${users}`;
    await page.call("openOnStore", "first", session, store);

    const second = await page.call("openOnStoreFails", session, store);
    expect(second).toMatchObject({ name: "SdkError", code: "crypto_store_in_use", isSdkError: true });
    // The first client is unharmed by the refused one.
    expect(await page.call("crossSigningStatus", "first")).toMatchObject({ hasMaster: false });

    await page.call("closeClient", "first");
    expect(await page.call("openOnStore", "again", session, store)).toEqual({
      userId: session.userId,
      deviceId: session.deviceId,
    });
    await page.call("closeClient", "again");
    expect(page.problems).toEqual([]);
    await page.close();
  });
});
