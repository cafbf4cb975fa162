import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";

/** Names Debian, Ubuntu and Google's packages give the binary, in the order we prefer them. */
const CANDIDATES = ["chromium", "chromium-browser", "google-chrome-stable", "google-chrome"] as const;

export class ChromiumNotFoundError extends Error {
  override name = "ChromiumNotFoundError";
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The Chromium the browser tests drive: `CHROMIUM_PATH` when set (and then only that), else the
 * first candidate on `PATH`. The tests never download a browser, so a missing one is an error that
 * says how to get one, not a silent skip.
 */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.CHROMIUM_PATH;
  if (override !== undefined && override !== "") {
    if (isExecutableFile(override)) return override;
    throw new ChromiumNotFoundError(
      `CHROMIUM_PATH is set to "${override}", which is not an executable file. ` +
        "Point it at a Chromium or Chrome binary, or unset it to use `chromium` from PATH.",
    );
  }
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    for (const name of CANDIDATES) {
      const path = join(dir, name);
      if (isExecutableFile(path)) return path;
    }
  }
  throw new ChromiumNotFoundError(
    `No Chromium found on PATH (looked for ${CANDIDATES.join(", ")}). The browser tests need a real ` +
      "Chromium: install Debian's package (`apt-get install -y chromium`) or set CHROMIUM_PATH to a " +
      "Chromium or Chrome binary. See docs/browser-tests.md.",
  );
}
