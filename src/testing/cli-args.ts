import { isProfileName, type ProfileName } from "./profiles.js";

export interface CliOptions {
  port: number;
  host: string;
  serverName: string;
  profile: ProfileName;
  seed: number | undefined;
}

export type CliParse = { ok: true; options: CliOptions } | { ok: false; error: string } | { ok: "help" };

export const CLI_USAGE = `usage: mock-server --port <n> [--host 127.0.0.1] [--server-name localhost]
                   [--profile synapse-1.157|synapse-1.156|tuwunel|msc] [--seed <n>]
  --port 0 picks a free port; the first line printed is the base URL.`;

/** Parses the CLI's arguments (`--flag value` or `--flag=value`); pure, so it is tested directly. */
export function parseCliArgs(argv: readonly string[]): CliParse {
  const options: CliOptions = {
    port: 8008,
    host: "127.0.0.1",
    serverName: "localhost",
    profile: "synapse-1.157",
    seed: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { ok: "help" };
    const eq = arg.indexOf("=");
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) return { ok: false, error: `${flag} needs a value` };
    switch (flag) {
      case "--port": {
        const port = Number(value);
        if (!Number.isInteger(port) || port < 0 || port > 65_535)
          return { ok: false, error: `bad port: ${value}` };
        options.port = port;
        break;
      }
      case "--host":
        options.host = value;
        break;
      case "--server-name":
        if (value === "") return { ok: false, error: "empty server name" };
        options.serverName = value;
        break;
      case "--profile":
        if (!isProfileName(value)) return { ok: false, error: `unknown profile: ${value}` };
        options.profile = value;
        break;
      case "--seed": {
        const seed = Number(value);
        if (!Number.isInteger(seed)) return { ok: false, error: `bad seed: ${value}` };
        options.seed = seed;
        break;
      }
      default:
        return { ok: false, error: `unknown option: ${flag}` };
    }
  }
  return { ok: true, options };
}
