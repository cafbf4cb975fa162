/** Replaces every occurrence of each secret in `text`, so a server echoing a token cannot leak it. */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join("<redacted>");
  }
  return out;
}

/** `redact` applied to every string (values and keys) inside a parsed JSON value. */
export function redactJson(value: unknown, secrets: readonly (string | undefined)[]): unknown {
  if (typeof value === "string") return redact(value, secrets);
  if (Array.isArray(value)) return value.map((item) => redactJson(item, secrets));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [redact(key, secrets), redactJson(item, secrets)]),
    );
  }
  return value;
}
