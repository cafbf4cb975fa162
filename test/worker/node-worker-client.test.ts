import { afterEach, describe, expect, it } from "vitest";
import { isSdkError } from "../../src/errors/sdk-error.js";
import { type RunningMockServer, startMockServer } from "../../src/testing/index.js";
import { createE2eeWorkerClient, type E2eeWorkerClient } from "../../src/worker/node.js";
import { createAccount, passwordAuth } from "../integration/support/foundation-fixtures.js";

/**
 * The client in a Node worker thread against the mock over a real socket: calls, events,
 * callbacks on this thread, errors rebuilt with their class and code, keys that do not print.
 */

const open: (E2eeWorkerClient | RunningMockServer)[] = [];
afterEach(async () => {
  for (const item of open.splice(0).reverse()) await item.close();
});

async function openAlice() {
  const server = await startMockServer({ port: 0 });
  open.push(server);
  const alice = createAccount(server, "alice");
  const client = await createE2eeWorkerClient({
    baseUrl: server.url,
    userId: alice.userId,
    deviceId: alice.deviceId,
    accessToken: alice.accessToken,
    uiaCallback: passwordAuth(alice),
  });
  open.push(client);
  return { server, alice, client };
}

const PROBE = new URL("./support/in-worker-probe.ts", import.meta.url).href;
const SETUP = new URL("./support/in-worker-setup-probe.ts", import.meta.url);

describe("createE2eeWorkerClient (Node worker thread)", () => {
  it("bootstraps cross-signing with the UIA callback called on this thread, and forwards events", async () => {
    const server = await startMockServer({ port: 0 });
    open.push(server);
    const alice = createAccount(server, "alice");
    let uiaCalls = 0;
    const auth = passwordAuth(alice);
    const client = await createE2eeWorkerClient({
      baseUrl: server.url,
      userId: alice.userId,
      deviceId: alice.deviceId,
      accessToken: alice.accessToken,
      uiaCallback: async (challenge) => {
        uiaCalls++;
        return auth(challenge);
      },
    });
    open.push(client);
    const names: string[] = [];
    client.events.onAny((name) => names.push(name));
    await client.processOutgoingRequests();
    const result = await client.crossSigning.bootstrap({ createSecretStorageKey: true });
    // Replacing the identity needs user-interactive auth: asked of the callback on this thread.
    await client.crossSigning.bootstrap({ reset: true });
    expect(uiaCalls).toBeGreaterThan(0);
    expect(result.recoveryKey).toMatch(/^E/);
    expect(String(result.secretStorageKey)).toMatch(/^SecretStorageKey\(|^CreatedSecretStorageKey\(/);
    expect(JSON.stringify(result.secretStorageKey)).not.toContain('key":{');
    expect(names).toContain("crypto.keysUploaded");
    expect((await client.crossSigning.status()).hasMaster).toBe(true);
    const trust = await client.deviceLists.trust("@bob:localhost");
    expect(trust).toEqual({ state: "unknown", userId: "@bob:localhost" });
    const error = await client.deviceLists.trust("bob").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isSdkError(error)).toBe(true);
    expect(error).toMatchObject({ name: "SdkError", code: "invalid_argument" });
    await client.close();
    await expect(client.crossSigning.status()).rejects.toMatchObject({ code: "client_closed" });
  });

  it("opens the client with options a setup module made inside the worker, such as a fetch of the app's own", async () => {
    const server = await startMockServer({ port: 0 });
    open.push(server);
    const alice = createAccount(server, "alice");
    const client = await createE2eeWorkerClient(
      { baseUrl: server.url, userId: alice.userId, deviceId: alice.deviceId, accessToken: alice.accessToken },
      { setup: { module: SETUP, export: "recordingFetch", args: ["app"] } },
    );
    open.push(client);
    await client.processOutgoingRequests();
    const recorded = await client.runInWorker<string[]>(SETUP, "recorded");
    expect(recorded).toContain("app /_matrix/client/v3/keys/upload");
    // Every request the client made went through the setup's fetch.
    const uploads = server.homeserver.control
      .requestLog()
      .filter((e) => e.path === "/_matrix/client/v3/keys/upload");
    expect(recorded.filter((r) => r === "app /_matrix/client/v3/keys/upload")).toHaveLength(uploads.length);
  });

  it("refuses a setup that cannot make options with invalid_options, and opens nothing", async () => {
    const server = await startMockServer({ port: 0 });
    open.push(server);
    const alice = createAccount(server, "alice");
    const options = {
      baseUrl: server.url,
      userId: alice.userId,
      deviceId: alice.deviceId,
      accessToken: alice.accessToken,
    };
    const setups = [
      { module: new URL("./support/no-such-module.ts", import.meta.url) },
      { module: SETUP, export: "noSuchExport" },
      { module: SETUP, export: "notAnObject" },
      { module: 5 as unknown as string },
      { module: SETUP, args: "app" as unknown as unknown[] },
    ];
    for (const setup of setups) {
      await expect(createE2eeWorkerClient(options, { setup })).rejects.toMatchObject({
        name: "SdkError",
        code: "invalid_options",
      });
    }
    // No client was opened: the device never uploaded its keys.
    expect(server.homeserver.control.requestLog().filter((e) => e.path.includes("/keys/upload"))).toEqual([]);
  });

  it("runs app code next to the client (runInWorker), with the machine and callbacks to this thread", async () => {
    const { alice, client } = await openAlice();
    expect(await client.runInWorker(PROBE, "machineIds", "x")).toBe(`${alice.userId}|${alice.deviceId}|x`);
    expect(await client.runInWorker(PROBE, "askApp", async (n: number) => n * 2)).toBe(41);
    await expect(client.runInWorker(PROBE, "failTyped")).rejects.toMatchObject({
      name: "SdkError",
      code: "invalid_argument",
    });
  });

  it("hears events emitted before a call resolved before it resolves", async () => {
    const { client } = await openAlice();
    const heard: string[] = [];
    client.events.on("crypto.keysUploaded", () => heard.push("event"));
    await client.processOutgoingRequests();
    heard.push("resolved");
    expect(heard).toEqual(["event", "resolved"]);
  });

  it("forwards an abort: a drain aborted on this thread rejects with DrainError aborted", async () => {
    const { client } = await openAlice();
    await client.processOutgoingRequests();
    const abort = new AbortController();
    abort.abort(new Error("the app gave up"));
    await expect(client.dehydration.drain({ signal: abort.signal })).rejects.toMatchObject({
      name: "DrainError",
      code: "aborted",
    });
    // A signal aborted later reaches the worker with its reason.
    const late = new AbortController();
    const waiting = client.runInWorker(PROBE, "waitForAbort", late.signal);
    late.abort(new Error("later"));
    expect(await waiting).toBe("later");
  });

  it("hands out the sync extension as a handle whose methods run in the worker", async () => {
    const { client } = await openAlice();
    const extension = await client.sync.extension();
    const request = await extension.request();
    expect(request).toHaveProperty("to_device");
    await extension.release();
    await expect(client.sync.status()).resolves.toMatchObject({ state: "stopped" });
  });

  it("refuses options that cannot cross a thread, with invalid_options", async () => {
    for (const extra of [{ fetch: globalThis.fetch }, { clock: { now: () => 0 } }, { random: Math.random }]) {
      await expect(
        createE2eeWorkerClient({
          baseUrl: "http://localhost:1",
          userId: "@a:localhost",
          deviceId: "D",
          accessToken: "token-not-used-here",
          ...(extra as object),
        }),
      ).rejects.toMatchObject({ name: "SdkError", code: "invalid_options" });
    }
  });

  it("a worker that dies fails the call in flight and every later one with worker_failed", async () => {
    const { client } = await openAlice();
    await expect(client.runInWorker(PROBE, "crash")).rejects.toMatchObject({ code: "worker_failed" });
    await expect(client.crossSigning.status()).rejects.toMatchObject({ code: "worker_failed" });
    await client.close();
  });
});
