import type { TestProject } from "vitest/node";
import { startPageServer } from "./page-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Origin of the Vite server for `test/browser/pages/`. */
    browserPagesOrigin: string;
  }
}

/**
 * One Vite server for every browser test file. Chromium itself is launched per file (see
 * browser-suite.ts), so a missing browser fails those tests with a message instead of aborting the
 * whole run before the JSON report is written.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startPageServer();
  project.provide("browserPagesOrigin", server.origin);
  return () => server.close();
}
