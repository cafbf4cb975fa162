/**
 * Path patterns shared by routes and scripted failures: literal segments, `{name}` for exactly one
 * segment (URL-decoded into `params.name`), and a final `*` for any remainder (zero or more).
 * Matching splits on `/` before decoding, so an encoded `%2F` inside a device id stays one segment.
 */
export interface PathPattern {
  readonly source: string;
  match(path: string): Record<string, string> | undefined;
}

type Segment = { kind: "literal"; value: string } | { kind: "param"; name: string } | { kind: "rest" };

export function compilePattern(source: string): PathPattern {
  const segments: Segment[] = source
    .split("/")
    .slice(1)
    .map((s, i, all) => {
      if (s === "*" && i === all.length - 1) return { kind: "rest" };
      const param = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(s);
      if (param) return { kind: "param", name: param[1]! };
      return { kind: "literal", value: s };
    });
  const hasRest = segments.at(-1)?.kind === "rest";
  return {
    source,
    match(path) {
      const parts = path.split("/").slice(1);
      if (hasRest ? parts.length < segments.length - 1 : parts.length !== segments.length) return undefined;
      const params: Record<string, string> = {};
      for (let i = 0; i < segments.length; i++) {
        const seg = segments[i]!;
        if (seg.kind === "rest") return params;
        const part = parts[i]!;
        if (seg.kind === "literal") {
          if (safeDecode(part) !== seg.value) return undefined;
        } else {
          const decoded = safeDecode(part);
          if (decoded === undefined || part === "") return undefined;
          params[seg.name] = decoded;
        }
      }
      return params;
    },
  };
}

function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}
