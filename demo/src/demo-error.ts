/** A failure the demo itself finds (not the SDK's or the server's), with a code like theirs. */
export class DemoError extends Error {
  override name = "DemoError";
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** What a failed step's card shows: the code and message of the error and of its causes. */
export interface ErrorParts {
  name: string;
  code: string | undefined;
  message: string;
}

/**
 * The error and its `cause` chain as `{name, code, message}`: codes (`code`, `errcode`, status)
 * and messages only. The SDK's and the demo's errors never put a token or key in either.
 */
export function errorChain(error: unknown): ErrorParts[] {
  const chain: ErrorParts[] = [];
  for (let current = error; current !== undefined && chain.length < 4; ) {
    if (!(current instanceof Error)) {
      chain.push({ name: "Error", code: undefined, message: String(current) });
      break;
    }
    const { code, errcode, status } = current as { code?: unknown; errcode?: unknown; status?: unknown };
    const codes = [...new Set([code, errcode].filter((c) => typeof c === "string"))];
    if (typeof status === "number") codes.push(`HTTP ${status}`);
    chain.push({
      name: current.name,
      code: codes.length > 0 ? codes.join(" · ") : undefined,
      message: current.message,
    });
    current = current.cause;
  }
  return chain;
}
