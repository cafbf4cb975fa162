import { beforeAll, describe, expect, it, vi } from "vitest";
import { createE2eeClient, type E2eeClient } from "../src/client.js";
import { loadCryptoWasm } from "../src/crypto/load-wasm.js";
import { DEHYDRATED_DEVICE_PATH } from "../src/dehydration/device/names.js";
import { createMockHomeserver, ManualClock, type MockHomeserver } from "../src/testing/index.js";

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

/** A client on `hs`, and the order in which it closed its machine relative to what the test notes. */
async function watchedClient(hs: MockHomeserver) {
  const account = hs.control.createUser("alice", { password: "pw" });
  if (!account) throw new Error("no account");
  const client = await createE2eeClient({ baseUrl: hs.baseUrl, fetch: hs.fetch, ...account });
  const order: string[] = [];
  const machine = client.olmMachine;
  const closeMachine = machine.close.bind(machine);
  machine.close = () => {
    order.push("machine closed");
    closeMachine();
  };
  return { client, order };
}

/** Holds the next call of `method` before it reaches crypto-wasm, until `letGo()`. */
function holdCryptoCall(client: E2eeClient, method: "receiveSyncChangesMsc4186" | "receiveSyncChanges") {
  const machine = client.olmMachine;
  const original = machine[method].bind(machine) as (...args: unknown[]) => Promise<unknown>;
  let entered!: () => void;
  const reached = new Promise<void>((resolve) => {
    entered = resolve;
  });
  let letGo!: () => void;
  const gate = new Promise<void>((resolve) => {
    letGo = resolve;
  });
  const spy = vi.spyOn(machine, method).mockImplementation((async (...args: unknown[]) => {
    entered();
    await gate;
    return original(...args);
  }) as never);
  return { reached, letGo, spy };
}

const handedResponses = {
  extension: (n: number) => ({
    pos: `app-${n}`,
    extensions: { to_device: { next_batch: `${n}`, events: [] } },
  }),
  classic: (n: number) => ({ next_batch: `s${n}` }),
};

describe("work in flight when the client closes", () => {
  it.each(["extension", "classic"] as const)(
    "%s: close() waits for the response in its crypto call; the one queued behind it rejects with client_closed",
    async (mode) => {
      const hs = createMockHomeserver();
      const { client, order } = await watchedClient(hs);
      const held = holdCryptoCall(
        client,
        mode === "extension" ? "receiveSyncChangesMsc4186" : "receiveSyncChanges",
      );
      let receive: (response: unknown) => Promise<unknown>;
      if (mode === "extension") {
        const extension = await client.sync.extension();
        receive = (r) => extension.receive(r);
      } else {
        receive = (r) => client.sync.receiveClassic(r);
      }
      const settled = (what: string) => [
        () => order.push(`${what} processed`),
        (error: unknown) => {
          order.push(`${what} failed`);
          return error;
        },
      ];
      const first = receive(handedResponses[mode](1)).then(...settled("first"));
      const second = receive(handedResponses[mode](2)).then(...settled("second"));
      await held.reached;

      const closed = client.close().then(() => order.push("client closed"));
      // However far close() gets meanwhile, it must not close the machine under the held call.
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 100))]);
      expect(order).toEqual([]);
      held.letGo();
      await closed;

      expect(await second).toMatchObject({ code: "client_closed" });
      await first;
      expect(order).toEqual(["first processed", "second failed", "machine closed", "client closed"]);
      // Only the first reached crypto-wasm, on the open machine.
      expect(held.spy).toHaveBeenCalledTimes(1);
    },
  );

  it("a sliding extension taken before close() says client_closed afterwards, not released", async () => {
    const hs = createMockHomeserver();
    const { client } = await watchedClient(hs);
    const extension = await client.sync.extension();
    await client.close();
    const before = hs.control.requestLog().length;
    await expect(extension.request()).rejects.toMatchObject({ code: "client_closed" });
    await expect(extension.receive(handedResponses.extension(1))).rejects.toMatchObject({
      code: "client_closed",
    });
    await expect(extension.positionLost()).rejects.toMatchObject({ code: "client_closed" });
    await expect(extension.release()).resolves.toBeUndefined();
    expect(hs.control.requestLog().length).toBe(before);
  });

  const parkedDehydrationCalls: [string, (c: E2eeClient) => Promise<unknown>][] = [
    ["dehydration.isSupported", (c) => c.dehydration.isSupported()],
    ["dehydration.status", (c) => c.dehydration.status()],
    ["dehydration.delete", (c) => c.dehydration.delete()],
  ];

  it.each(parkedDehydrationCalls)(
    "%s waiting on the server is cancelled with client_closed",
    async (_name, call) => {
      const serverClock = new ManualClock();
      const hs = createMockHomeserver({ clock: serverClock });
      const { client } = await watchedClient(hs);
      // Every request now waits at the server until the test moves its clock.
      hs.control.setFaults({ latencyMs: 10_000 });
      const pending = call(client).catch((error: unknown) => error);
      while (serverClock.pendingSleeps === 0) await new Promise((resolve) => setTimeout(resolve, 1));

      await client.close();
      // Had the request gone on, the server would answer it now.
      await serverClock.advance(10_000);
      expect(await pending).toMatchObject({ name: "AbortError", cause: { code: "client_closed" } });
    },
  );

  it("dehydration.replaceNow in flight settles before the machine closes, and uploads nothing", async () => {
    const serverClock = new ManualClock();
    const hs = createMockHomeserver({ clock: serverClock });
    const { client, order } = await watchedClient(hs);
    hs.control.setFaults({ latencyMs: 10_000 });
    const pending = client.dehydration.replaceNow({ force: true }).then(
      () => order.push("replaced"),
      (error: unknown) => {
        order.push("replaceNow settled");
        return error;
      },
    );
    while (serverClock.pendingSleeps === 0) await new Promise((resolve) => setTimeout(resolve, 1));

    await client.close();
    await serverClock.advance(10_000);
    expect(await pending).toMatchObject({ name: "AbortError", cause: { code: "client_closed" } });
    expect(order).toEqual(["replaceNow settled", "machine closed"]);
    expect(
      hs.control.requestLog().filter((e) => e.path === DEHYDRATED_DEVICE_PATH && e.method === "PUT"),
    ).toEqual([]);
  });
});
