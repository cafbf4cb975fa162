import { beforeAll, describe, expect, it } from "vitest";
import { createE2eeClient } from "../../src/client.js";
import { loadCryptoWasm } from "../../src/crypto/load-wasm.js";
import { createMockHomeserver } from "../../src/testing/index.js";

/**
 * `client.deviceLists` through the facade: bad options are `invalid_options`, and after `close()`
 * every call is `client_closed` and sends nothing.
 */

beforeAll(() => loadCryptoWasm());

async function client(options: Record<string, unknown> = {}) {
  const hs = createMockHomeserver();
  const account = hs.control.createUser("alice", { password: "pw" });
  if (!account) throw new Error("no account");
  return {
    hs,
    client: await createE2eeClient({ baseUrl: hs.baseUrl, fetch: hs.fetch, ...account, ...options }),
  };
}

describe("client.deviceLists through the facade", () => {
  it.each([
    [{ minResyncIntervalMs: -1 }],
    [{ serverBackoff: { baseMs: 0 } }],
    [{ serverBackoff: { baseMs: 2_000, capMs: 1_000 } }],
    [{ sendTimeoutMs: 1.5 }],
    [{ msc2638: "yes" }],
    // Node's timers fire delays of 2^31 ms or more after 1 ms.
    [{ sendTimeoutMs: 2 ** 31 }],
    [{ refreshArrivalTimeoutMs: 2 ** 31 }],
    [{ minResyncIntervalMs: 2 ** 31 }],
    [{ serverBackoff: { baseMs: 1_000, capMs: 2 ** 31 } }],
    [{ serverBackoff: { baseMs: 2 ** 31, capMs: 2 ** 32 } }],
  ])("refuses deviceLists %j with invalid_options", async (deviceLists) => {
    await expect(client({ deviceLists })).rejects.toMatchObject({ code: "invalid_options" });
  });

  it("refuses an ensureFresh timeout of 2^31 ms or more, accepts 2^31 − 1", async () => {
    const { client: c } = await client();
    try {
      await expect(
        c.deviceLists.ensureFresh(["@bob:localhost"], { timeoutMs: 2 ** 31 }),
      ).rejects.toMatchObject({
        code: "invalid_argument",
      });
      await expect(c.deviceLists.ensureFresh([], { timeoutMs: 2 ** 31 - 1 })).resolves.toEqual([]);
    } finally {
      await c.close();
    }
  });

  it("after close(), every call rejects (or throws) client_closed and sends nothing", async () => {
    const { hs, client: c } = await client();
    await c.close();
    const before = hs.control.requestLog().length;
    expect(() => c.deviceLists.trust("@bob:localhost")).toThrow(
      expect.objectContaining({ code: "client_closed" }),
    );
    expect(() => c.deviceLists.trustAll()).toThrow(expect.objectContaining({ code: "client_closed" }));
    expect(() => c.deviceLists.report("@bob:localhost")).toThrow(
      expect.objectContaining({ code: "client_closed" }),
    );
    await expect(c.deviceLists.requestResync(["@bob:localhost"])).rejects.toMatchObject({
      code: "client_closed",
    });
    await expect(c.deviceLists.ensureFresh(["@bob:localhost"], { timeoutMs: 10 })).rejects.toMatchObject({
      code: "client_closed",
    });
    expect(hs.control.requestLog().length).toBe(before);
  });

  it("a resync in flight at close() ends without touching the closed machine", async () => {
    const { client: c } = await client();
    const pending = c.deviceLists.requestResync(["@bob:localhost"]);
    await c.close();
    await expect(pending).resolves.toHaveLength(1);
  });
});
