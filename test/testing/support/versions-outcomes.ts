import type { Harness } from "./transports.js";

export const VERSIONS = "/_matrix/client/versions";

/** `n` requests for `/versions` in a row: each one's status, or "dropped" when the connection was cut. */
export async function outcomes(h: Harness, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    try {
      const res = await h.fetch(`${h.url}${VERSIONS}`);
      out.push(String(res.status));
      await res.text();
    } catch (err) {
      out.push(err instanceof TypeError ? "dropped" : "other");
    }
  }
  return out;
}
