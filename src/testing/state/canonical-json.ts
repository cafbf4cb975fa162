/**
 * Canonical JSON (Matrix appendix "Canonical JSON": sorted keys, no insignificant whitespace).
 * The mock compares uploaded key objects the way Synapse does — by their canonical encoding — so
 * re-sending an identical object is a no-op while any real change counts as one.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.keys(value as Record<string, unknown>)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(",")}}`;
}

/** A deep copy of a JSON value, so stored objects never alias what a caller may still mutate. */
export function cloneJson<T>(value: T): T {
  return structuredClone(value);
}
