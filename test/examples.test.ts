import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const tsx = fileURLToPath(new URL("../node_modules/.bin/tsx", import.meta.url));
const examples = readdirSync(new URL("../examples", import.meta.url)).filter((f) => f.endsWith(".ts"));

// Each example is a program a reader copies: it runs as its own process, imports the package by
// name (resolved to the sources through tsconfig `paths`), and ends by printing "ok".
describe("examples/", () => {
  it("has examples", () => {
    expect(examples.length).toBeGreaterThan(0);
  });

  it.each(examples)(
    "%s runs to the end",
    async (file) => {
      const { stdout, stderr } = await run(tsx, [`examples/${file}`], {
        cwd: root,
        timeout: 120_000,
        env: { ...process.env, NODE_OPTIONS: "" },
      });
      const lines = stdout.trim().split("\n");
      expect(lines.at(-1), `stderr: ${stderr}`).toBe("ok");
    },
    150_000,
  );
});
