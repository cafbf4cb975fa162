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
});
