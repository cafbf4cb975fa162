import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { whoamiResponseSchema } from "../../src/http/schemas/whoami.js";
import { droppedMidBody, fetchFailed, json, text } from "./scripted-fetch.js";
import { observe, setup, TOKEN } from "./support.js";

const whoami = {
  method: "GET",
  path: "/_matrix/client/v3/account/whoami",
  schema: whoamiResponseSchema,
} as const;

/** Everything a developer could end up printing: message, stack, details, cause chain, fields. */
function everythingPrintable(error: unknown): string {
  return [inspect(error, { depth: 10, showHidden: true }), JSON.stringify(error), String(error)].join("\n");
}

describe("the access token", () => {
  it("never appears in any error or log line, whatever goes wrong", async () => {
    const { http, server, clock, logger } = setup({ retry: { maxAttempts: 2 }, defaultTimeoutMs: 1_000 });
    server.push(
      // rate limit, then a server that echoes the token back in its error text
      json(429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 10 }),
      json(403, { errcode: "M_FORBIDDEN", error: `token ${TOKEN} may not do this` }),
      // a network failure twice
      fetchFailed(),
      fetchFailed(),
      // a dropped body twice
      droppedMidBody(),
      droppedMidBody(),
      // a proxy page twice
      text(502, "<html>bad gateway</html>"),
      text(502, "<html>bad gateway</html>"),
      // a malformed success
      json(200, { user_id: 42, device_id: TOKEN }),
      // timeouts twice
      "hang",
      "hang",
      // a hard logout
      json(401, { errcode: "M_UNKNOWN_TOKEN", error: `Unknown token ${TOKEN}` }),
    );
    const errors: unknown[] = [];
    const run = async (req: Parameters<typeof http.request>[0]) => {
      const pending = observe(http.request(req));
      await clock.advance(5_000);
      const settled = await pending.result;
      if (settled.done && !settled.ok) errors.push(settled.error);
    };
    await run(whoami);
    await run(whoami);
    await run(whoami);
    await run(whoami);
    await run(whoami);
    await run(whoami);
    // A caller that puts access_token in the path's query string: the error must drop the query.
    server.push(json(400, { errcode: "M_UNKNOWN" }));
    await run({
      method: "POST",
      path: `/_matrix/client/v3/keys/claim?access_token=${TOKEN}`,
      body: {},
      schema: z.unknown(),
    });
    await run(whoami);

    expect(server.remaining).toBe(0);
    expect(errors.map((e) => (e as Error).name)).toEqual([
      "MatrixApiError",
      "NetworkError",
      "NetworkError",
      "MatrixApiError",
      "MalformedResponseError",
      "TimeoutError",
      "MatrixApiError",
      "MatrixApiError",
    ]);
    // The token did go out, in the header only, so the checks below are not vacuous.
    expect(server.calls.every((c) => c.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(logger.lines.length).toBeGreaterThan(4);
    for (const error of errors) expect(everythingPrintable(error)).not.toContain(TOKEN);
    for (const line of logger.lines) expect(line).not.toContain(TOKEN);
    expect(errors[0]).toMatchObject({ error: "token <redacted> may not do this" });
    expect(errors[6]).toMatchObject({ path: "/_matrix/client/v3/keys/claim" });
  });
});
