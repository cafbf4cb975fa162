import { describe, expect, it } from "vitest";
import { createHttpAccountData } from "../../src/secret-storage/account-data-http.js";
import { SecretStorage } from "../../src/secret-storage/secret-storage.js";
import { json, text } from "../http/scripted-fetch.js";
import { observe, rejection, setup } from "../http/support.js";

const ALICE = "@alice:example.org";
const base = `/_matrix/client/v3/user/${encodeURIComponent(ALICE)}/account_data`;

describe("account data over HTTP", () => {
  it("reads a type's content from GET /user/{userId}/account_data/{type}", async () => {
    const { server, http } = setup();
    server.push(json(200, { key: "KEYID" }));
    const access = createHttpAccountData(http, ALICE);

    expect(await access.get("m.secret_storage.default_key")).toEqual({ key: "KEYID" });
    expect(server.calls).toHaveLength(1);
    expect(server.calls[0]!.method).toBe("GET");
    expect(server.calls[0]!.url.pathname).toBe(`${base}/m.secret_storage.default_key`);
  });

  it("encodes the user id and the type as one path segment each", async () => {
    const { server, http } = setup();
    server.push(json(200, {}));
    await createHttpAccountData(http, ALICE).get("org.example/odd type?x");

    expect(server.calls[0]!.url.pathname).toBe(`${base}/org.example%2Fodd%20type%3Fx`);
    expect(server.calls[0]!.url.search).toBe("");
  });

  it("answers undefined for a type that was never set (404 M_NOT_FOUND)", async () => {
    const { server, http } = setup();
    server.push(json(404, { errcode: "M_NOT_FOUND", error: "Account data not found" }));

    expect(await createHttpAccountData(http, ALICE).get("m.cross_signing.master")).toBeUndefined();
    expect(server.calls).toHaveLength(1);
  });

  it("throws a 404 that is not M_NOT_FOUND, since an unknown endpoint is not an empty value", async () => {
    const { server, http } = setup();
    server.push(json(404, { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" }));

    const error = await rejection(createHttpAccountData(http, ALICE).get("m.cross_signing.master"));
    expect(error).toMatchObject({ name: "MatrixApiError", status: 404, errcode: "M_UNRECOGNIZED" });
  });

  it("throws a 404 without a Matrix body, e.g. a proxy's error page", async () => {
    // Such a 404 is transient to the transport; one attempt keeps the test off the retry clock.
    const { server, http } = setup({ retry: { maxAttempts: 1 } });
    server.push(text(404, "<html>not here</html>"));

    const error = await rejection(createHttpAccountData(http, ALICE).get("m.cross_signing.master"));
    expect(error).toMatchObject({ name: "MatrixApiError", status: 404, errcode: undefined });
  });

  it.each([
    ["an array", [1, 2]],
    ["a string", "content"],
    ["null", null],
  ])("rejects content that is %s with a typed error", async (_what, body) => {
    const { server, http } = setup();
    server.push(json(200, body));

    const error = await rejection(createHttpAccountData(http, ALICE).get("m.secret_storage.default_key"));
    expect(error).toMatchObject({ name: "MalformedResponseError", code: "malformed_response" });
  });

  it("retries a GET that met a server error", async () => {
    const { server, http, clock } = setup();
    server.push(json(502, {}), json(200, { key: "KEYID" }));
    const retried = new Promise<{ delayMs: number }>((resolve) =>
      http.events.once("requestRetried", resolve),
    );
    const result = observe(createHttpAccountData(http, ALICE).get("m.secret_storage.default_key"));

    await clock.advance((await retried).delayMs);
    expect(await result.result).toEqual({ done: true, ok: true, value: { key: "KEYID" } });
    expect(server.calls).toHaveLength(2);
  });

  it("writes content with PUT and retries it, since a replaced value is the same value", async () => {
    const { server, http, clock } = setup();
    server.push(json(429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 1500 }), json(200, {}));
    const retried = new Promise<{ delayMs: number }>((resolve) =>
      http.events.once("requestRetried", resolve),
    );
    const content = { encrypted: { KEYID: { iv: "aXY", ciphertext: "Y3Q", mac: "bWFj" } } };
    const result = observe(createHttpAccountData(http, ALICE).set("m.cross_signing.master", content));

    const { delayMs } = await retried;
    expect(delayMs).toBe(1500);
    await clock.advance(1499);
    expect(server.calls).toHaveLength(1);
    await clock.advance(1);
    expect(await result.result).toEqual({ done: true, ok: true, value: undefined });
    expect(server.calls.map((c) => [c.method, c.url.pathname])).toEqual([
      ["PUT", `${base}/m.cross_signing.master`],
      ["PUT", `${base}/m.cross_signing.master`],
    ]);
    expect(server.calls.map((c) => JSON.parse(c.body))).toEqual([content, content]);
  });

  it("throws when the server refuses a write", async () => {
    const { server, http } = setup();
    server.push(json(403, { errcode: "M_FORBIDDEN", error: "Cannot add account data for other users." }));

    const error = await rejection(createHttpAccountData(http, ALICE).set("m.secret_storage.default_key", {}));
    expect(error).toMatchObject({ name: "MatrixApiError", status: 403, errcode: "M_FORBIDDEN" });
    expect(server.calls).toHaveLength(1);
  });

  it("refuses a type that would change which endpoint the request reaches", async () => {
    const { server, http } = setup();
    const access = createHttpAccountData(http, ALICE);

    await expect(access.get("..")).rejects.toMatchObject({ code: "invalid_path_segment" });
    await expect(access.set("", {})).rejects.toMatchObject({ code: "invalid_path_segment" });
    expect(server.calls).toHaveLength(0);
  });

  it("refuses an empty user id up front", () => {
    const { http } = setup();
    expect(() => createHttpAccountData(http, "")).toThrow(
      expect.objectContaining({ code: "invalid_user_id" }),
    );
  });

  it("aborts its requests when the caller's signal fires", async () => {
    const { server, http } = setup();
    server.push("hang");
    const controller = new AbortController();
    const result = observe(
      createHttpAccountData(http, ALICE, { signal: controller.signal }).get("m.secret_storage.default_key"),
    );
    await new Promise((r) => setTimeout(r, 0));
    controller.abort();

    const settled = await result.result;
    expect(settled).toMatchObject({ done: true, ok: false, error: { name: "AbortError" } });
  });

  it("carries secret storage: a default key written by one reader is found by the next", async () => {
    // An in-memory server for the two account-data endpoints, to show the accessor round-trips
    // what SecretStorage writes.
    const stored = new Map<string, string>();
    const { http } = setup({
      fetch: async (request) => {
        const type = decodeURIComponent(new URL(request.url).pathname.split("/").pop()!);
        if (request.method === "PUT") {
          stored.set(type, await request.text());
          return json(200, {});
        }
        const body = stored.get(type);
        return body === undefined
          ? json(404, { errcode: "M_NOT_FOUND", error: "Account data not found" })
          : new Response(body, { status: 200, headers: { "content-type": "application/json" } });
      },
    });
    const storage = new SecretStorage(createHttpAccountData(http, ALICE));
    expect(await storage.getDefaultKeyId()).toBeUndefined();

    const created = await storage.createKey();
    await storage.store("org.example.secret", "hunter2", created);

    const again = new SecretStorage(createHttpAccountData(http, ALICE));
    expect(await again.getDefaultKeyId()).toBe(created.keyId);
    const unlocked = await again.unlockWithRecoveryKey(created.recoveryKey);
    expect(await again.get("org.example.secret", unlocked)).toBe("hunter2");
  });
});
