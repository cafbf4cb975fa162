import { describe, expect, it } from "vitest";
import type { StateStoreScenarios } from "./pages/state-store.js";
import { useBrowserSuite } from "./support/browser-suite.js";

const browser = useBrowserSuite();

const CHECKPOINT = {
  since: "d42",
  drained: 137,
  deviceId: "AbC/+def",
  nested: { keys: [1, 2, 3], done: false },
};

describe("IndexedDbStateStore in Chromium", () => {
  it("keeps values and deletions across a page reload", async () => {
    const page = await browser.openPage<StateStoreScenarios>("state-store");
    expect(await page.call("durability", "reload-db")).toBe("durable");
    await page.call("set", "reload-db", "checkpoint", CHECKPOINT);
    await page.call("set", "reload-db", "to-delete", "soon gone");
    await page.call("set", "reload-db", "overwritten", 1);
    await page.call("set", "reload-db", "overwritten", 2);
    await page.call("delete", "reload-db", "to-delete");
    await page.call("closeAll");

    await page.reload();
    expect(await page.call("get", "reload-db", "checkpoint")).toEqual({ found: true, value: CHECKPOINT });
    expect(await page.call("get", "reload-db", "to-delete")).toEqual({ found: false });
    expect(await page.call("get", "reload-db", "overwritten")).toEqual({ found: true, value: 2 });
    expect(await page.call("get", "reload-db", "never-written")).toEqual({ found: false });
    // Databases are separate namespaces.
    expect(await page.call("get", "another-db", "checkpoint")).toEqual({ found: false });
    await page.close();
  });

  it("keeps values written without closing the store across a reload", async () => {
    const page = await browser.openPage<StateStoreScenarios>("state-store");
    // `set` resolves after the transaction commits, so a page torn down right after loses nothing.
    await page.call("set", "unclosed-db", "position", "pos-7");
    await page.reload();
    expect(await page.call("get", "unclosed-db", "position")).toEqual({ found: true, value: "pos-7" });
    await page.close();
  });

  it("keeps values on disk across a browser restart", async () => {
    let page = await browser.openPage<StateStoreScenarios>("state-store");
    await page.call("set", "restart-db", "checkpoint", CHECKPOINT);
    await page.close();

    await browser.restartBrowser();
    page = await browser.openPage<StateStoreScenarios>("state-store");
    expect(await page.call("get", "restart-db", "checkpoint")).toEqual({ found: true, value: CHECKPOINT });
    await page.close();
  });

  it("refuses values JSON cannot represent, as the memory store does, and keeps the old value", async () => {
    const page = await browser.openPage<StateStoreScenarios>("state-store");
    await page.call("set", "typed-db", "value", "kept");
    expect(await page.callExpectingError("setBigInt", "typed-db", "value")).toMatchObject({
      name: "StateStoreError",
      code: "not_serialisable",
    });
    expect(await page.call("get", "typed-db", "value")).toEqual({ found: true, value: "kept" });
    await page.close();
  });
});
