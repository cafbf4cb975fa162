import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // crypto-wasm work is CPU-bound; two cores on CI.
    pool: "forks",
    maxWorkers: 2,
    reporters: ["default", "json"],
    outputFile: { json: ".vitest-report.json" },
    projects: [
      {
        extends: true,
        test: {
          name: "node",
          include: ["test/**/*.test.ts"],
          exclude: ["test/browser/**", "node_modules/**"],
        },
      },
      {
        // Renderer behaviour in a real Chromium (docs/browser-tests.md). Vitest runs these files in
        // Node; each drives its own Chromium through playwright-core.
        extends: true,
        test: {
          name: "browser",
          include: ["test/browser/**/*.test.ts"],
          globalSetup: ["test/browser/support/global-setup.ts"],
          // One Chromium at a time, after the Node tests: a browser per core would starve both. The
          // files share one worker (their state lives in the browser, not in Node), saving a fork each.
          fileParallelism: false,
          isolate: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
