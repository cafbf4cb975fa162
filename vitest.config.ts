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
        // The facade's integration tests once more with the client in a Node worker thread
        // (src/worker/node.ts): the fixtures read E2EE_CLIENT_MODE (test/integration/support/client-mode.ts).
        // The files that open no client of the facade are not repeated.
        extends: true,
        test: {
          name: "worker",
          include: ["test/integration/**/*.test.ts"],
          exclude: [
            "node_modules/**",
            "test/integration/crypto-wiring.test.ts",
            "test/integration/http-transport.test.ts",
            "test/integration/matrix-js-sdk-clients.test.ts",
            "test/integration/mock-olm-machines.test.ts",
            "test/integration/rooms-decrypt.test.ts",
          ],
          env: { E2EE_CLIENT_MODE: "worker" },
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
