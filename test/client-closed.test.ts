import { beforeAll, describe, expect, it } from "vitest";
import { createE2eeClient, type E2eeClient } from "../src/client.js";
import { loadCryptoWasm } from "../src/crypto/load-wasm.js";
import { createMockHomeserver } from "../src/testing/index.js";

/**
 * After `close()` the client is finished: every call on every capability rejects with
 * `client_closed` before it sends anything or touches the (closed) crypto machine, and nothing
 * keeps running on timers.
 */

beforeAll(() => loadCryptoWasm());

async function closedClient() {
  const hs = createMockHomeserver();
  const account = hs.control.createUser("alice", { password: "pw" });
  if (!account) throw new Error("no account");
  const client = await createE2eeClient({ baseUrl: hs.baseUrl, fetch: hs.fetch, ...account });
  await client.close();
  return { hs, client };
}

const calls: [string, (c: E2eeClient) => Promise<unknown>][] = [
  ["processOutgoingRequests", (c) => c.processOutgoingRequests()],
  ["crossSigning.status", (c) => c.crossSigning.status()],
  ["crossSigning.bootstrap", (c) => c.crossSigning.bootstrap()],
  ["crossSigning.restoreFromRecoveryKey", (c) => c.crossSigning.restoreFromRecoveryKey("EsT")],
  ["crossSigning.restoreFromPassphrase", (c) => c.crossSigning.restoreFromPassphrase("pw")],
  ["secretStorage.getDefaultKeyId", (c) => c.secretStorage.getDefaultKeyId()],
  ["secretStorage.createKey", (c) => c.secretStorage.createKey()],
  ["secretStorage.checkKey", (c) => c.secretStorage.checkKey(new Uint8Array(32))],
  ["secretStorage.unlockWithRecoveryKey", (c) => c.secretStorage.unlockWithRecoveryKey("EsT")],
  ["secretStorage.unlockWithPassphrase", (c) => c.secretStorage.unlockWithPassphrase("pw")],
  ["secretStorage.isStored", (c) => c.secretStorage.isStored("m.cross_signing.master")],
  ["dehydration.isSupported", (c) => c.dehydration.isSupported()],
  ["dehydration.status", (c) => c.dehydration.status()],
  ["dehydration.drain", (c) => c.dehydration.drain()],
  ["dehydration.start", (c) => c.dehydration.start()],
  ["dehydration.replaceNow", (c) => c.dehydration.replaceNow({ force: true })],
  ["dehydration.delete", (c) => c.dehydration.delete()],
  ["sync.start", (c) => c.sync.start()],
  ["sync.extension", (c) => c.sync.extension()],
  ["sync.receiveClassic", (c) => c.sync.receiveClassic({ next_batch: "s1" })],
];

describe("a closed client", () => {
  it.each(calls)("%s rejects with client_closed and sends nothing", async (_name, call) => {
    const { hs, client } = await closedClient();
    const before = hs.control.requestLog().length;
    await expect(call(client)).rejects.toMatchObject({ code: "client_closed" });
    expect(hs.control.requestLog().length).toBe(before);
  });

  it("stop() calls and close() again resolve", async () => {
    const { client } = await closedClient();
    await expect(client.dehydration.stop()).resolves.toBeUndefined();
    await expect(client.sync.stop()).resolves.toBeUndefined();
    await expect(client.close()).resolves.toBeUndefined();
  });
});
