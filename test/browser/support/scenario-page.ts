import type { BrowserContext, Page } from "playwright-core";
import type { PageErrorInfo, ScenarioOutcome, ScenarioSet } from "../pages/scenario-protocol.js";

/** How long a page may take to load its module (Vite compiles it on first request). */
const READY_TIMEOUT_MS = 30_000;

/** A page from `test/browser/pages/`, typed by the scenarios its module exposes. */
export interface ScenarioPage<S extends ScenarioSet> {
  readonly page: Page;
  /** Uncaught errors and `console.error` lines seen so far, for failure messages. */
  readonly problems: readonly string[];
  /** Calls a scenario; a scenario that throws in the page throws here as a `PageScenarioError`. */
  call<K extends keyof S & string>(name: K, ...args: Parameters<S[K]>): Promise<Awaited<ReturnType<S[K]>>>;
  /** Calls a scenario that must fail; resolves to the page's error, and throws if it succeeded. */
  callExpectingError<K extends keyof S & string>(name: K, ...args: Parameters<S[K]>): Promise<PageErrorInfo>;
  /** Reloads the page (the JS heap is gone; IndexedDB stays) and waits for its scenarios again. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

export class PageScenarioError extends Error {
  override name = "PageScenarioError";
  readonly page: PageErrorInfo;

  constructor(scenario: string, page: PageErrorInfo) {
    super(
      `scenario "${scenario}" failed in the page: ${page.name}${page.code ? ` [${page.code}]` : ""}: ${page.message}`,
    );
    this.page = page;
  }
}

async function waitForScenarios(page: Page, pageName: string, problems: readonly string[]): Promise<void> {
  try {
    await page.waitForFunction(() => window.__browserTest !== undefined, undefined, {
      timeout: READY_TIMEOUT_MS,
    });
  } catch (error) {
    const seen = problems.length > 0 ? `; the page reported:\n  ${problems.join("\n  ")}` : "";
    throw new Error(`page "${pageName}" never exposed its scenarios${seen}`, { cause: error });
  }
}

async function run(page: Page, name: string, args: readonly unknown[]): Promise<ScenarioOutcome> {
  return page.evaluate(
    ({ name, args }) => {
      const runner = window.__browserTest;
      if (runner === undefined) throw new Error("the page's scenarios are not loaded");
      return runner.run(name, args);
    },
    { name, args },
  );
}

/**
 * Opens `pages/<pageName>.html` in a new tab and waits until its module has called
 * `exposeScenarios`. Type the result with the page's exported scenario type:
 * `openScenarioPage<CryptoWasmScenarios>(context, origin, "crypto-wasm")`.
 */
export async function openScenarioPage<S extends ScenarioSet>(
  context: BrowserContext,
  origin: string,
  pageName: string,
): Promise<ScenarioPage<S>> {
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(`uncaught ${error.name}: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console.error: ${message.text()}`);
  });
  // Chromium shows an empty error page as a navigation failure, so a 404 may come either way.
  let status: number | string;
  try {
    const response = await page.goto(`${origin}/${pageName}.html`);
    status = response === null ? "no response" : response.status();
  } catch (error) {
    status = error instanceof Error ? (error.message.split("\n")[0] ?? error.message) : String(error);
  }
  if (status !== 200) {
    await page.close();
    const detail = typeof status === "number" ? `HTTP ${status}` : status;
    throw new Error(`page "${pageName}" did not load (${detail})`);
  }
  await waitForScenarios(page, pageName, problems);

  return {
    page,
    problems,
    async call(name, ...args) {
      const outcome = await run(page, name, args);
      if (!outcome.ok) throw new PageScenarioError(name, outcome.error);
      return outcome.value as never;
    },
    async callExpectingError(name, ...args) {
      const outcome = await run(page, name, args);
      if (outcome.ok) throw new Error(`scenario "${name}" was expected to fail but succeeded`);
      return outcome.error;
    },
    async reload() {
      await page.reload();
      await waitForScenarios(page, pageName, problems);
    },
    close: () => page.close(),
  };
}
