/**
 * What the request log keeps of a request body. Tests print the log when they fail, and CI keeps
 * that output, so the log holds no secret: no access token anywhere, and no key material, password
 * or UIA answer. Everything else stays readable, so a test can check what a client asked for.
 */

export const REDACTED = "<redacted>";

/**
 * Fields whose value is a secret wherever they appear: passwords and tokens; Olm/Megolm
 * (`ciphertext`, `session_key`) and secret-storage (`encrypted`, `mac`, `iv`) payloads; private
 * keys and `m.secret.send`'s `secret`; and `auth`, a UIA answer that may carry a password.
 */
const SECRET_FIELDS = new Set([
  "password",
  "new_password",
  "access_token",
  "refresh_token",
  "token",
  "session_key",
  "ciphertext",
  "private_key",
  "secret",
  "encrypted",
  "mac",
  "iv",
  "auth",
]);

/** Non-JSON text beyond this many characters is cut: a media upload must not fill the log. */
const TEXT_LIMIT = 1024;

/** Shorter strings are not scrubbed as tokens: a bogus short token is no secret, and would mangle the body. */
const MIN_TOKEN_LENGTH = 8;

/**
 * `value` (parsed JSON) with the value of every secret field replaced by `REDACTED`, at any depth;
 * `device_data` (MSC3814) keeps only its `algorithm`. `true`, `false` and `null` stay, as they hide
 * nothing and say e.g. that a login asked for a refresh token. Each of `tokens` (the request's own
 * access token) is also cut out of every string and key. Returns a copy; `value` is not changed.
 */
export function redactSecrets(value: unknown, tokens: readonly string[] = []): unknown {
  const secrets = tokens.filter((t) => t.length >= MIN_TOKEN_LENGTH);
  const scrub = (s: string) => secrets.reduce((text, t) => text.replaceAll(t, REDACTED), s);
  const walk = (v: unknown, key: string | undefined): unknown => {
    if (key !== undefined && SECRET_FIELDS.has(key) && !isFlag(v)) return REDACTED;
    if (key === "device_data" && !isFlag(v)) {
      if (!isObject(v)) return REDACTED;
      return Object.fromEntries(
        Object.entries(v).map(([k, inner]) => [
          scrub(k),
          k === "algorithm" ? walk(inner, undefined) : REDACTED,
        ]),
      );
    }
    if (typeof v === "string") return scrub(v);
    if (Array.isArray(v)) return v.map((item) => walk(item, undefined));
    // `fromEntries` defines own properties, so a `__proto__` key stays a key.
    if (isObject(v)) {
      return Object.fromEntries(Object.entries(v).map(([k, inner]) => [scrub(k), walk(inner, k)]));
    }
    return v;
  };
  return walk(value, undefined);
}

/**
 * The log's copy of a request body: `undefined` for GET and HEAD (never read) and an empty body;
 * parsed JSON through `redactSecrets`; otherwise the UTF-8 text, tokens cut out, shortened past
 * `TEXT_LIMIT`; or `"<n bytes, not UTF-8>"`.
 */
export function loggedBody(method: string, body: Uint8Array | null, tokens: readonly string[]): unknown {
  if (method === "GET" || method === "HEAD" || body === null || body.byteLength === 0) return undefined;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    return `<${body.byteLength} bytes, not UTF-8>`;
  }
  try {
    return redactSecrets(JSON.parse(text), tokens);
  } catch {
    const scrubbed = redactSecrets(text, tokens) as string;
    if (scrubbed.length <= TEXT_LIMIT) return scrubbed;
    return `${scrubbed.slice(0, TEXT_LIMIT)}… (${body.byteLength} bytes)`;
  }
}

/** The access token(s) a request presents, valid or not: the `Bearer` header and `?access_token=`. */
export function presentedTokens(headers: Headers, query: URLSearchParams): string[] {
  const tokens: string[] = [];
  const header = headers.get("authorization");
  if (header !== null) tokens.push(header.replace(/^\s*Bearer\s+/i, "").trim());
  const queryToken = query.get("access_token");
  if (queryToken !== null) tokens.push(queryToken);
  return tokens;
}

function isFlag(v: unknown): boolean {
  return v === true || v === false || v === null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
