import { describe, expect, it } from "vitest";
import type { CryptoWasmScenarios } from "./pages/crypto-wasm.js";
import { useBrowserSuite } from "./support/browser-suite.js";

const browser = useBrowserSuite();

const USER = "@alice:localhost";
const DEVICE = "ALICEDEVICE";
const PASSPHRASE = "correct horse battery staple";
const WRONG_PASSPHRASE = "incorrect horse battery staple";

describe("crypto-wasm in Chromium", () => {
  it("keeps a device's identity keys in its IndexedDB store across a page reload", async () => {
    const page = await browser.openPage<CryptoWasmScenarios>("crypto-wasm");
    const first = await page.call("openStore", USER, DEVICE, "reload-store", PASSPHRASE);
    expect(first).toMatchObject({ userId: USER, deviceId: DEVICE });
    expect(first.ed25519).toMatch(/^[A-Za-z0-9+/]{43}$/);
    expect(first.curve25519).toMatch(/^[A-Za-z0-9+/]{43}$/);
    expect(await page.call("databaseNames", "reload-store")).not.toEqual([]);
    expect(await page.call("close")).toBe(true);

    await page.reload();
    const reopened = await page.call("openStore", USER, DEVICE, "reload-store", PASSPHRASE);
    expect(reopened).toEqual(first);

    // A store of another name is another device: equal keys above are the store's doing.
    const other = await page.call("openStore", USER, DEVICE, "reload-store-other", PASSPHRASE);
    expect(other.ed25519).not.toBe(first.ed25519);
    expect(other.curve25519).not.toBe(first.curve25519);
    await page.call("close");
    await page.close();
  });

  it("refuses the store with a wrong passphrase and still opens it with the right one", async () => {
    const page = await browser.openPage<CryptoWasmScenarios>("crypto-wasm");
    const original = await page.call("openStore", USER, DEVICE, "passphrase-store", PASSPHRASE);
    await page.call("close");
    await page.reload();

    const error = await page.callExpectingError(
      "openStore",
      USER,
      DEVICE,
      "passphrase-store",
      WRONG_PASSPHRASE,
    );
    // crypto-wasm cannot decrypt the store's pickle with a key derived from the wrong passphrase.
    expect(error.message).toMatch(/decrypt/i);
    expect(error.message).not.toContain(WRONG_PASSPHRASE);
    expect(error.message).not.toContain(PASSPHRASE);

    // The failed attempt destroyed nothing.
    expect(await page.call("openStore", USER, DEVICE, "passphrase-store", PASSPHRASE)).toEqual(original);
    await page.call("close");
    await page.close();
  });

  it("reports a wrong passphrase through the SDK as crypto_store_open_failed without the passphrase", async () => {
    const page = await browser.openPage<CryptoWasmScenarios>("crypto-wasm");
    const original = await page.call("openStoreWithSdk", USER, DEVICE, "sdk-store", PASSPHRASE);
    await page.call("close");
    await page.reload();

    const error = await page.callExpectingError(
      "openStoreWithSdk",
      USER,
      DEVICE,
      "sdk-store",
      WRONG_PASSPHRASE,
    );
    expect(error).toMatchObject({ name: "SdkError", code: "crypto_store_open_failed" });
    expect(error.message).not.toContain(WRONG_PASSPHRASE);

    expect(await page.call("openStoreWithSdk", USER, DEVICE, "sdk-store", PASSPHRASE)).toEqual(original);
    await page.call("close");
    await page.close();
  });

  it("keeps the store on disk across a browser restart", async () => {
    let page = await browser.openPage<CryptoWasmScenarios>("crypto-wasm");
    const original = await page.call("openStore", USER, DEVICE, "restart-store", PASSPHRASE);
    await page.call("close");

    await browser.restartBrowser();
    page = await browser.openPage<CryptoWasmScenarios>("crypto-wasm");
    expect(await page.call("openStore", USER, DEVICE, "restart-store", PASSPHRASE)).toEqual(original);
    await page.call("close");
    await page.close();
  });
});
