import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createE2eeClient, type E2eeClient } from "../../src/client.js";
import { loadCryptoWasm } from "../../src/crypto/load-wasm.js";
import {
  expectEncryptionRequests,
  type InProcessSync,
  inProcessSync,
  SyncRecorder,
  slidingRequests,
  waitUntil,
} from "../integration/support/sync-fixtures.js";

/**
 * One device, one connection carrying `e2ee` and `to_device`: the server acknowledges to-device
 * messages per device, not per connection (Synapse `deviceinbox.py` deletes up to `since` for the
 * user and device), so a second loop for the device would delete the first one's messages
 * (MSC3885: enable the extension on one connection only). Within one JavaScript context the SDK
 * refuses every second claim — the same client's, or another client's for the same device — and a
 * stopped loop gives the claim back.
 */

let current: InProcessSync | undefined;
const extra: E2eeClient[] = [];

beforeAll(() => loadCryptoWasm());

afterEach(async () => {
  await Promise.all(extra.splice(0).map((c) => c.close()));
  await current?.client.close();
  current = undefined;
});

async function setup(): Promise<InProcessSync> {
  current = await inProcessSync();
  return current;
}

/** Another client of the same device in this process (sharing the machine, as an app's second tab object would). */
async function sameDevice(s: InProcessSync): Promise<E2eeClient> {
  const client = await createE2eeClient({
    baseUrl: s.hs.baseUrl,
    ...s.alice,
    fetch: s.fetch,
    clock: s.clock,
    olmMachine: s.client.olmMachine,
  });
  extra.push(client);
  return client;
}

const alreadyRunning = (mode: string) =>
  expect.objectContaining({ code: "sync_already_running", details: expect.objectContaining({ mode }) });

const classicResponse = { next_batch: "s0_0_0_0" };

describe("one encryption loop per device", () => {
  it("refuses a second start, an extension and a classic feed while the sliding loop runs", async () => {
    const s = await setup();
    await s.client.sync.start();
    await expect(s.client.sync.start()).rejects.toEqual(alreadyRunning("sliding"));
    await expect(s.client.sync.start({ mode: "classic" })).rejects.toEqual(alreadyRunning("sliding"));
    await expect(s.client.sync.extension()).rejects.toEqual(alreadyRunning("sliding"));
    await expect(s.client.sync.receiveClassic(classicResponse)).rejects.toEqual(alreadyRunning("sliding"));
    expect(await s.client.sync.status()).toMatchObject({ state: "running", mode: "sliding" });
  });

  it("refuses the app's classic feed beside the SDK's own classic loop", async () => {
    const s = await setup();
    await s.client.sync.start({ mode: "classic" });
    await expect(s.client.sync.receiveClassic(classicResponse)).rejects.toEqual(alreadyRunning("classic"));
    await expect(s.client.sync.extension()).rejects.toEqual(alreadyRunning("classic"));
  });

  it("refuses a loop while the app's extension or classic feed holds the device", async () => {
    const s = await setup();
    const extension = await s.client.sync.extension();
    await expect(s.client.sync.start()).rejects.toEqual(alreadyRunning("extension"));
    await expect(s.client.sync.receiveClassic(classicResponse)).rejects.toEqual(alreadyRunning("extension"));
    await extension.release();
    await expect(extension.request()).rejects.toMatchObject({ code: "sync_stopped" });

    await s.client.sync.receiveClassic(classicResponse);
    await expect(s.client.sync.start({ mode: "classic" })).rejects.toEqual(alreadyRunning("classic"));
    await expect(s.client.sync.extension()).rejects.toEqual(alreadyRunning("classic"));
    // A second response of the app's own loop is the same feed, not a second claim.
    await s.client.sync.receiveClassic({ next_batch: "s0_0_0_1" });
    expect((await s.client.sync.status()).positions.classicSince).toBe("s0_0_0_1");
    await s.client.sync.stop();
    await s.client.sync.start();
    expect(await s.client.sync.status()).toMatchObject({ state: "running", mode: "sliding" });
  });

  it("refuses a second client of the same device in this process until the first one stops", async () => {
    const s = await setup();
    const other = await sameDevice(s);
    await s.client.sync.start();
    await expect(other.sync.start()).rejects.toEqual(alreadyRunning("in-process"));
    await expect(other.sync.start({ mode: "classic" })).rejects.toEqual(alreadyRunning("in-process"));
    await expect(other.sync.extension()).rejects.toEqual(alreadyRunning("in-process"));
    await expect(other.sync.receiveClassic(classicResponse)).rejects.toEqual(alreadyRunning("in-process"));
    expect((await other.sync.status()).state).toBe("stopped");

    await s.client.sync.stop();
    await other.sync.start();
    expect((await other.sync.status()).state).toBe("running");
    await expect(s.client.sync.start()).rejects.toEqual(alreadyRunning("in-process"));
    // Closing a client gives its claim back too.
    await other.close();
    await s.client.sync.start();
    expect((await s.client.sync.status()).state).toBe("running");
  });

  it("stop() ends a parked long-poll and releases; a new start goes on from the kept positions", async () => {
    const s = await setup();
    const seen = new SyncRecorder(s.client);
    await s.client.sync.start();
    await waitUntil("the loop long-polls", () => s.serverClock.pendingSleeps === 1);
    const before = (await s.client.sync.status()).positions;
    expect(before.pos).toBeDefined();

    await s.client.sync.stop();
    expect(s.serverClock.pendingSleeps).toBe(0);
    expect(await s.client.sync.status()).toMatchObject({
      state: "stopped",
      mode: undefined,
      positions: before,
    });
    await s.client.sync.stop();

    await s.client.sync.start();
    await waitUntil("the loop long-polls again", () => s.serverClock.pendingSleeps === 1);
    const requests = slidingRequests(s.hs);
    // The restarted loop resumes its connection: same pos, same since, answered at once.
    const resumed = requests[2]!;
    expect(new URLSearchParams(resumed.query).get("pos")).toBe(before.pos);
    expect(new URLSearchParams(resumed.query).get("timeout")).toBe("0");
    expect(
      seen.events.map((e) => e.name).filter((n) => n === "sync.running" || n === "sync.stopped"),
    ).toEqual(["sync.running", "sync.stopped", "sync.running"]);
    expect(seen.of("sync.error")).toEqual([]);
    expectEncryptionRequests(requests);
  });
});
