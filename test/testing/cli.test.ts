import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import packageJson from "../../package.json" with { type: "json" };
import { CLI_NAME, CLI_USAGE, parseCliArgs } from "../../src/testing/cli-args.js";
import { profiles } from "../../src/testing/profiles.js";

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
        controlToken: undefined,
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
        "--control-token=s3cret",
      ]),
    ).toEqual({
      ok: true,
      options: {
        port: 0,
        host: "::1",
        serverName: "example.org",
        profile: "tuwunel",
        seed: 9,
        controlToken: "s3cret",
      },
    });
  });

  it.each(["0.0.0.0", "::", "192.168.1.20", "127.0.0.2", "example.org"])(
    "refuses the non-loopback host %s without --control-token, and serves it with one",
    (host) => {
      const open = parseCliArgs(["--host", host]);
      expect(open.ok).toBe(false);
      if (open.ok === false) expect(open.error).toMatch(/not a loopback address.*--control-token/);
      const guarded = parseCliArgs(["--host", host, "--control-token", "s3cret"]);
      expect(guarded.ok === true && guarded.options).toMatchObject({ host, controlToken: "s3cret" });
    },
  );

  it.each(["127.0.0.1", "::1", "localhost"])("serves the loopback host %s without a token given", (host) => {
    const parsed = parseCliArgs(["--host", host]);
    expect(parsed.ok === true && parsed.options).toMatchObject({ host, controlToken: undefined });
  });

  it("takes the last of a repeated option", () => {
    const parsed = parseCliArgs(["--port", "1", "--port=2"]);
    expect(parsed.ok === true && parsed.options.port).toBe(2);
  });

  it.each([
    [["--help"]],
    [["-h"]],
    [["--port", "1", "--help"]],
    // Help wins over mistakes in the other arguments.
    [["--verbose", "--help"]],
    [["--port=abc", "-h"]],
  ])("answers help to %j", (argv) => {
    expect(parseCliArgs(argv)).toEqual({ ok: "help" });
  });

  it.each([
    [["--port", "70000"], /^bad port: "70000"/],
    [["--port", "abc"], /^bad port: "abc"/],
    [["--port=abc"], /^bad port: "abc"/],
    [["--port="], /^bad port: ""/],
    [["--port", "-1"], /--port/],
    [["--port", "1e3"], /^bad port: "1e3"/],
    [["--port", "0x10"], /^bad port: "0x10"/],
    [["--port"], /--port.*missing/],
    // A flag where a value belongs is a forgotten value, not the value.
    [["--port", "--host", "::1"], /--port.*ambiguous/],
    [["--host="], /^empty host$/],
    [["--server-name="], /^empty server name$/],
    [["--profile", "dendrite"], /^unknown profile: "dendrite" \(one of synapse-1\.157, /],
    [["--seed", "1.5"], /^bad seed: "1\.5"/],
    [["--seed="], /^bad seed: ""/],
    [["--control-token="], /^bad control token/],
    [["--control-token", "two words"], /^bad control token/],
    [["--verbose", "1"], /unknown option '--verbose'/i],
    [["--verbose=1"], /unknown option '--verbose'/i],
    [["-p", "8008"], /unknown option '-p'/i],
    [["--help=yes"], /--help.*does not take an argument/],
    [["8008"], /unexpected argument '8008'/i],
    [["--", "--port", "1"], /unexpected argument '--port'/i],
  ])("refuses %j", (argv, message) => {
    const parsed = parseCliArgs(argv);
    expect(parsed.ok).toBe(false);
    if (parsed.ok === false) expect(parsed.error).toMatch(message);
  });

  it("names the installed binary and every profile in its usage text", () => {
    const bin = Object.keys(packageJson.bin);
    expect(bin).toEqual([CLI_NAME]);
    expect(CLI_USAGE).toMatch(new RegExp(`^usage: ${CLI_NAME} `));
    for (const name of Object.keys(profiles)) expect(CLI_USAGE).toContain(name);
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

  it("makes up a control token, prints it on the second line, and asks control calls for it", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/testing/cli.ts", "--port", "0"], {
      cwd: process.cwd(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      const url = (await lines.next()).value as string;
      const tokenLine = (await lines.next()).value as string;
      expect(tokenLine).toMatch(/^control token: [A-Za-z0-9_-]{43}$/);
      const token = tokenLine.slice("control token: ".length);

      expect((await fetch(`${url}/_mock/profile`)).status).toBe(401);
      const wrong = await fetch(`${url}/_mock/profile`, { headers: { authorization: "Bearer nope" } });
      expect(wrong.status).toBe(403);
      const right = await fetch(`${url}/_mock/profile`, { headers: { authorization: `Bearer ${token}` } });
      expect(right.status).toBe(200);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("exits 2 on a non-loopback host without --control-token, before listening", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/testing/cli.ts", "--host", "0.0.0.0"], {
      cwd: process.cwd(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += String(d);
    });
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain("not a loopback address");
  });

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
    expect(stderr).toContain(`usage: ${CLI_NAME}`);
  });
});
