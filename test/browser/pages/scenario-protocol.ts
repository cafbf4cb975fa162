/**
 * The contract between a test page and the Node side. A page registers named async functions with
 * `exposeScenarios`; the Node side calls one with `ScenarioPage.call` (support/scenario-page.ts)
 * through `page.evaluate`. Only structured-cloneable data crosses that boundary, so errors come back as plain
 * data (name, code, message) rather than thrown: the Node side decides what a failure means.
 */

export interface PageErrorInfo {
  name: string;
  /** `SdkError.code` and friends, when the error has one. */
  code?: string;
  /** `MatrixApiError.errcode` and `.status`, when the server's answer caused the error. */
  errcode?: string;
  status?: number;
  message: string;
}

export type ScenarioOutcome<T = unknown> = { ok: true; value: T } | { ok: false; error: PageErrorInfo };

// biome-ignore lint/suspicious/noExplicitAny: scenario parameters are whatever each page declares.
export type Scenario = (...args: any[]) => Promise<unknown>;
export type ScenarioSet = Record<string, Scenario>;

export interface ScenarioRunner {
  readonly names: readonly string[];
  run(name: string, args: readonly unknown[]): Promise<ScenarioOutcome>;
}

declare global {
  interface Window {
    /** Set once the page's module has loaded and its scenarios are callable. */
    __browserTest?: ScenarioRunner;
  }
}

export function describeError(error: unknown): PageErrorInfo {
  if (error instanceof Error) {
    const { code, errcode, status } = error as { code?: unknown; errcode?: unknown; status?: unknown };
    return {
      name: error.name,
      message: error.message,
      ...(typeof code === "string" ? { code } : {}),
      ...(typeof errcode === "string" ? { errcode } : {}),
      ...(typeof status === "number" ? { status } : {}),
    };
  }
  return { name: typeof error, message: String(error) };
}

/** Call last in a page module: the Node side waits for this before calling anything. */
export function exposeScenarios(scenarios: ScenarioSet): void {
  window.__browserTest = {
    names: Object.keys(scenarios),
    async run(name, args) {
      const scenario = scenarios[name];
      if (scenario === undefined) {
        return {
          ok: false,
          error: { name: "UnknownScenario", message: `this page has no scenario "${name}"` },
        };
      }
      try {
        return { ok: true, value: await scenario(...args) };
      } catch (error) {
        return { ok: false, error: describeError(error) };
      }
    },
  };
}
