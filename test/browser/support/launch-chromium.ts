import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";
import { findChromium } from "./find-chromium.js";

/**
 * Flags for a sealed-off headless Chromium. The background-networking, component-update and sync
 * switches stop Chromium from dialling Google's services; on a machine without internet those
 * attempts end in refused connections that also disturb the page's own. `--headless` and
 * `--no-sandbox` repeat what playwright adds, so the list reads as the whole story.
 */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface ChromiumSession {
  readonly executablePath: string;
  /** The profile directory: IndexedDB lives here, on disk, so it outlives reloads and restarts. */
  readonly userDataDir: string;
  /** The live browser; replaced by `restart`. */
  readonly context: BrowserContext;
  /** Quits Chromium and starts it again on the same profile, as a user closing the app would. */
  restart(): Promise<BrowserContext>;
  /** Quits Chromium and deletes the profile directory. */
  close(): Promise<void>;
}

async function launchOn(executablePath: string, userDataDir: string): Promise<BrowserContext> {
  // playwright refuses `--user-data-dir` in `args`; a persistent context passes our directory itself.
  return chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [...CHROMIUM_FLAGS],
    // Nothing here should wait long: a hung page is a failure, reported by the caller's timeout.
    timeout: 30_000,
  });
}

/** Starts Chromium on a fresh, empty profile in a temporary directory. */
export async function launchChromium(): Promise<ChromiumSession> {
  const executablePath = findChromium();
  const userDataDir = await mkdtemp(join(tmpdir(), "matrix-e2ee-devices-chromium-"));
  let context: BrowserContext;
  try {
    context = await launchOn(executablePath, userDataDir);
  } catch (error) {
    await rm(userDataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    executablePath,
    userDataDir,
    get context() {
      return context;
    },
    async restart() {
      await context.close();
      context = await launchOn(executablePath, userDataDir);
      return context;
    },
    async close() {
      try {
        await context.close();
      } finally {
        await rm(userDataDir, { recursive: true, force: true });
      }
    },
  };
}
