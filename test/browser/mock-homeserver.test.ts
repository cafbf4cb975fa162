import { describe, expect, it } from "vitest";
import type { MockHomeserverScenarios } from "./pages/mock-homeserver.js";
import { useBrowserSuite } from "./support/browser-suite.js";

const browser = useBrowserSuite();

describe("the SDK against the mock homeserver's in-page fetch", () => {
  it("registers a user and publishes a crypto-wasm device's keys without any socket", async () => {
    const page = await browser.openPage<MockHomeserverScenarios>("mock-homeserver");
    const result = await page.call("registerAndUploadDeviceKeys", "alice", "a password for alice");

    expect(result.account.userId).toBe("@alice:localhost");
    expect(result.account.deviceId).not.toBe("");
    expect(result.whoami).toEqual(result.account);
    expect(result.sent).toContain("KeysUpload");
    expect(result.publishedEd25519).toBe(result.machineEd25519);
    await page.close();
  });

  it("surfaces a taken username as the server's M_USER_IN_USE", async () => {
    const page = await browser.openPage<MockHomeserverScenarios>("mock-homeserver");
    const error = await page.callExpectingError("registerTwice", "bob", "a password for bob");
    expect(error).toMatchObject({ name: "MatrixApiError", status: 400, errcode: "M_USER_IN_USE" });
    expect(error.message).not.toContain("a password for bob");
    await page.close();
  });
});
