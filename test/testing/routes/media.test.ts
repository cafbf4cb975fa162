import { afterEach, describe, expect, it } from "vitest";
import { type Harness, startHarness, transports } from "../support/transports.js";
import { registerUser } from "./e2ee-test-users.js";

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

describe.each(transports)("media over %s", (transport) => {
  it("stores uploaded bytes and serves them back unchanged to authenticated users", async () => {
    harness = await startHarness(transport);
    const alice = await registerUser(harness.homeserver, "alice");
    const bytes = new Uint8Array(256).map((_, i) => i);
    const auth = { authorization: `Bearer ${alice.accessToken}` };

    const uploaded = await harness.fetch(`${harness.url}/_matrix/media/v3/upload?filename=bundle.bin`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/octet-stream" },
      body: bytes,
    });
    const { content_uri: uri } = (await uploaded.json()) as { content_uri: string };
    expect(uri).toMatch(/^mxc:\/\/localhost\/[A-Za-z]{24}$/);

    const path = uri.slice("mxc://".length);
    const downloaded = await harness.fetch(`${harness.url}/_matrix/client/v1/media/download/${path}`, {
      headers: auth,
    });
    expect(downloaded.status).toBe(200);
    expect(downloaded.headers.get("content-type")).toBe("application/octet-stream");
    expect(new Uint8Array(await downloaded.arrayBuffer())).toEqual(bytes);

    const anonymous = await harness.fetch(`${harness.url}/_matrix/client/v1/media/download/${path}`);
    expect(anonymous.status).toBe(401);
    const legacy = await harness.fetch(`${harness.url}/_matrix/media/v3/download/${path}`);
    expect(legacy.status).toBe(404);
    const unknown = await harness.fetch(`${harness.url}/_matrix/client/v1/media/download/localhost/nothing`, {
      headers: auth,
    });
    expect(((await unknown.json()) as { errcode: string }).errcode).toBe("M_NOT_FOUND");
  });
});
