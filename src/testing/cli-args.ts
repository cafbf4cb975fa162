import { parseArgs } from "node:util";
import { checkControlToken, controlExposureError } from "./control-auth.js";
import { defaultProfileName, isProfileName, type ProfileName, profiles } from "./profiles.js";

export interface CliOptions {
  port: number;
  host: string;
  serverName: string;
  profile: ProfileName;
  seed: number | undefined;
  /** `--control-token`; when absent the CLI makes one up and prints it. */
  controlToken: string | undefined;
}

export type CliParse = { ok: true; options: CliOptions } | { ok: false; error: string } | { ok: "help" };

/** The command as installed: package.json `bin`. */
export const CLI_NAME = "matrix-e2ee-mock-server";

const indent = " ".repeat(`usage: ${CLI_NAME} `.length);

export const CLI_USAGE = `usage: ${CLI_NAME} [--port 8008] [--host 127.0.0.1] [--server-name localhost]
${indent}[--profile ${Object.keys(profiles).join("|")}] [--seed <n>]
${indent}[--control-token <token>]
  --port 0 picks a free port; the first line printed is the base URL.
  /_mock/ control calls need "Authorization: Bearer <token>"; without --control-token a random
  token is made and printed on the second line. A host other than 127.0.0.1, ::1 or localhost
  needs --control-token.`;

/** Every option takes a value, given as `--flag value` or `--flag=value`; a repeated one: the last wins. */
const OPTIONS = {
  port: { type: "string", default: "8008" },
  host: { type: "string", default: "127.0.0.1" },
  "server-name": { type: "string", default: "localhost" },
  profile: { type: "string", default: defaultProfileName },
  seed: { type: "string" },
  "control-token": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/**
 * Parses the CLI's arguments with `node:util` `parseArgs` (strict: unknown options, a missing value
 * and stray arguments are errors); pure, so it is tested directly. `--help`/`-h` anywhere wins over
 * any mistake in the other arguments.
 */
export function parseCliArgs(argv: readonly string[]): CliParse {
  let values: ReturnType<typeof parse>;
  try {
    values = parse(argv);
  } catch (err) {
    if (wantsHelp(argv)) return { ok: "help" };
    // parseArgs' own errors (`ERR_PARSE_ARGS_*`) name the option and what is wrong with it.
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  if (values.help) return { ok: "help" };

  const port = values.port;
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65_535) {
    return { ok: false, error: `bad port: ${JSON.stringify(port)} (an integer from 0 to 65535)` };
  }
  if (values.host === "") return { ok: false, error: "empty host" };
  if (values["server-name"] === "") return { ok: false, error: "empty server name" };
  const profile = values.profile;
  if (!isProfileName(profile)) {
    return {
      ok: false,
      error: `unknown profile: ${JSON.stringify(profile)} (one of ${Object.keys(profiles).join(", ")})`,
    };
  }
  let seed: number | undefined;
  if (values.seed !== undefined) {
    seed = /^-?\d+$/.test(values.seed) ? Number(values.seed) : Number.NaN;
    if (!Number.isSafeInteger(seed)) {
      return { ok: false, error: `bad seed: ${JSON.stringify(values.seed)} (an integer)` };
    }
  }
  const controlToken = values["control-token"];
  if (controlToken !== undefined) {
    try {
      checkControlToken(controlToken);
    } catch {
      return { ok: false, error: "bad control token (visible ASCII characters, no spaces)" };
    }
  }
  // Only a token the user chose counts: a made-up one is printed, and on a shared network anyone
  // reading the output (a CI log, say) could use it.
  const exposed = controlExposureError(values.host, controlToken);
  if (exposed !== undefined) return { ok: false, error: `${exposed} (--control-token)` };
  return {
    ok: true,
    options: {
      port: Number(port),
      host: values.host,
      serverName: values["server-name"],
      profile,
      seed,
      controlToken,
    },
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false }).values;
}

/** `--help` or `-h` before any `--`, which ends the options. */
function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  const options = end >= 0 ? argv.slice(0, end) : argv;
  return options.includes("--help") || options.includes("-h");
}
