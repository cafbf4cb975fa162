import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import { parseCliArgs } from "../../src/testing/cli-args.js";

describe("parseCliArgs", () => {
  it("reads every option in both spellings and fills defaults", () => {
    expect(parseCliArgs([])).toEqual({
      ok: true,
      options: {
        port: 8008,
        host: "127.0.0.1",
        serverName: "localhost",
        profile: "synapse-1.157",
        seed: undefined,
      },
    });
    expect(
      parseCliArgs([
        "--port",
        "0",
        "--host=::1",
        "--server-name",
        "example.org",
        "--profile=tuwunel",
        "--seed",
        "9",
      ]),
    ).toEqual({
      ok: true,
      options: { port: 0, host: "::1", serverName: "example.org", profile: "tuwunel", seed: 9 },
    });
  });

  it.each([
    [["--port", "70000"], "bad port"],
    [["--port", "abc"], "bad port"],
    [["--port"], "needs a value"],
    [["--profile", "dendrite"], "unknown profile"],
    [["--seed", "1.5"], "bad seed"],
    [["--verbose", "1"], "unknown option"],
  ])("refuses %j", (argv, message) => {
    const parsed = parseCliArgs(argv);
    expect(parsed.ok).toBe(false);
    if (parsed.ok === false) expect(parsed.error).toContain(message);
  });
});

describe("the mock-server CLI", () => {
  // SIGINT is what Ctrl-C in a terminal sends, SIGTERM what process managers and CI runners send.
  it.each(["SIGTERM", "SIGINT"] as const)(
    "prints its URL once listening, serves /versions, and exits 0 on %s",
    async (signal) => {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", "src/testing/cli.ts", "--port", "0", "--profile", "tuwunel"],
        { cwd: process.cwd(), stdio: ["ignore", "pipe", "pipe"] },
      );
      let stderr = "";
      child.stderr.on("data", (d) => {
        stderr += String(d);
      });
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      try {
        const lines = createInterface({ input: child.stdout });
        const url = await new Promise<string>((resolve, reject) => {
          lines.once("line", resolve);
          child.once("exit", () => reject(new Error(`exited early: ${stderr}`)));
        });
        expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
        expect(url).not.toMatch(/:0$/);
        const res = await fetch(`${url}/_matrix/client/versions`);
        expect(res.status).toBe(200);
        const body = (await res.json()) as { versions: string[] };
        expect(body.versions).toContain("v1.19");
        expect(child.kill(signal)).toBe(true);
        expect(await exited).toBe(0);
        await expect(fetch(`${url}/_matrix/client/versions`)).rejects.toThrow();
      } finally {
        if (child.exitCode === null) child.kill("SIGKILL");
      }
    },
  );

  it("exits 2 with a usage message on a bad option", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/testing/cli.ts", "--profile", "nope"], {
      cwd: process.cwd(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    expect(code).toBe(2);
    expect(stderr).toContain("unknown profile");
    expect(stderr).toContain("usage:");
  });
});
