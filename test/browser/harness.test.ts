import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StateStoreScenarios } from "./pages/state-store.js";
import { useBrowserSuite } from "./support/browser-suite.js";
import { ChromiumNotFoundError, findChromium } from "./support/find-chromium.js";
import { PageScenarioError } from "./support/scenario-page.js";

const browser = useBrowserSuite();

let dir: string;
let fakeChromium: string;
let notExecutable: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "find-chromium-"));
  fakeChromium = join(dir, "chromium");
  await writeFile(fakeChromium, "#!/bin/sh\n");
  await chmod(fakeChromium, 0o755);
  notExecutable = join(dir, "google-chrome");
  await writeFile(notExecutable, "");
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("findChromium", () => {
  it("uses CHROMIUM_PATH when it names an executable file", () => {
    expect(findChromium({ CHROMIUM_PATH: fakeChromium, PATH: "" })).toBe(fakeChromium);
  });

  it("refuses a CHROMIUM_PATH that is not executable instead of falling back to PATH", () => {
    expect(() => findChromium({ CHROMIUM_PATH: notExecutable, PATH: dir })).toThrow(ChromiumNotFoundError);
    expect(() => findChromium({ CHROMIUM_PATH: join(dir, "missing"), PATH: dir })).toThrow(/CHROMIUM_PATH/);
  });

  it("finds chromium on PATH and skips directories without it", () => {
    expect(findChromium({ PATH: [join(dir, "missing"), dir].join(delimiter) })).toBe(fakeChromium);
  });

  it("says how to get a browser when there is none", () => {
    expect(() => findChromium({ PATH: join(dir, "missing") })).toThrow(
      /apt-get install -y chromium.*CHROMIUM_PATH/s,
    );
  });
});

describe("the page harness", () => {
  it("fails at once on a page that does not exist", async () => {
    await expect(browser.openPage("no-such-page")).rejects.toThrow(
      /"no-such-page" did not load \((HTTP 404|.*ERR_HTTP_RESPONSE_CODE_FAILURE)/,
    );
  });

  it("turns an error thrown in the page into a PageScenarioError with its name and code", async () => {
    const page = await browser.openPage<StateStoreScenarios>("state-store");
    const failure = page.call("setBigInt", "harness-db", "key");
    await expect(failure).rejects.toBeInstanceOf(PageScenarioError);
    await expect(failure).rejects.toMatchObject({
      page: { name: "StateStoreError", code: "not_serialisable" },
    });
    await page.close();
  });

  it("reports a scenario the page does not expose", async () => {
    const page = await browser.openPage<StateStoreScenarios>("state-store");
    const error = await page.callExpectingError("noSuchScenario" as "get", "harness-db", "key");
    expect(error).toEqual({ name: "UnknownScenario", message: 'this page has no scenario "noSuchScenario"' });
    await page.close();
  });

  it("refuses to treat a successful scenario as the expected failure", async () => {
    const page = await browser.openPage<StateStoreScenarios>("state-store");
    await expect(page.callExpectingError("get", "harness-db", "key")).rejects.toThrow(/expected to fail/);
    await page.close();
  });
});
