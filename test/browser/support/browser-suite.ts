import type { BrowserContext } from "playwright-core";
import { afterAll, beforeAll, inject } from "vitest";
import type { ScenarioSet } from "../pages/scenario-protocol.js";
import { type ChromiumSession, launchChromium } from "./launch-chromium.js";
import { openScenarioPage, type ScenarioPage } from "./scenario-page.js";

export interface BrowserSuite {
  /** Opens `test/browser/pages/<pageName>.html` in a new tab of this file's Chromium. */
  openPage<S extends ScenarioSet>(pageName: string): Promise<ScenarioPage<S>>;
  /** Quits Chromium and relaunches it on the same profile; pages opened before are gone. */
  restartBrowser(): Promise<void>;
  /** The live browser context, for anything the helpers above do not cover. */
  readonly context: BrowserContext;
}

/**
 * Call once at the top of a browser test file: launches one Chromium (fresh temporary profile) for
 * the file and quits it afterwards. The extension point for new scenarios is a page pair in
 * `test/browser/pages/` (`<name>.html` + `<name>.ts` calling `exposeScenarios`) and a test file
 * that opens it with `openPage`.
 */
export function useBrowserSuite(): BrowserSuite {
  const origin = inject("browserPagesOrigin");
  let session: ChromiumSession | undefined;
  let launchError: unknown;

  // A launch failure (no Chromium, say) is kept and thrown by each test that needs the browser, so
  // every one of them fails with its message; thrown here, Vitest would report them as skipped.
  beforeAll(async () => {
    try {
      session = await launchChromium();
    } catch (error) {
      launchError = error;
    }
  });
  afterAll(async () => {
    await session?.close();
    session = undefined;
  });

  function live(): ChromiumSession {
    if (launchError !== undefined) throw launchError;
    if (session === undefined) throw new Error("Chromium is not running (used outside a test?)");
    return session;
  }

  return {
    openPage: (pageName) => openScenarioPage(live().context, origin, pageName),
    async restartBrowser() {
      await live().restart();
    },
    get context() {
      return live().context;
    },
  };
}
