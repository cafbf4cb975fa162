/**
 * Lints the package as it would be published: packs the built `dist/` (`npm run build` first; the
 * pack skips `prepack`, which would build it again)
 * into a temporary directory and runs publint (warnings fail) and Are the Types Wrong (the ESM-only
 * profile: the package has no CommonJS entry, by design) on that one tarball. Nothing here talks to
 * the registry.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const shell = process.platform === "win32";

/** Runs a linter with its output shown as it comes; true when it passed. */
function lint(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: "inherit", shell }).status === 0;
}

// A tarball packed from a clean checkout has no `dist/` unless packing builds it.
const manifest = JSON.parse(readFileSync("package.json", "utf8")) as { scripts?: Record<string, string> };
if (!manifest.scripts?.prepack?.includes("build")) {
  process.stderr.write("package.json needs a prepack script that builds dist/\n");
  process.exitCode = 1;
}

const dir = mkdtempSync(join(tmpdir(), "lint-package-"));
try {
  const packed = JSON.parse(
    execFileSync("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], {
      encoding: "utf8",
      shell,
    }),
  ) as { filename: string }[];
  const tarball = join(dir, packed[0]!.filename);
  const results = [
    lint("publint", ["run", tarball, "--strict"]),
    lint("attw", [tarball, "--profile", "esm-only", "--format", "table-flipped", "--no-emoji", "--no-color"]),
  ];
  process.stdout.write("\n"); // attw's table ends without one
  if (results.includes(false)) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
