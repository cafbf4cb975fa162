import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { call, type Harness, register, startHarness, transports } from "../support/transports.js";

describe.each(transports)("account data and room keys (%s)", (transport) => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness(transport);
  });
  afterEach(async () => {
    await h.close();
  });

  const path = (userId: string, type: string) =>
    `/_matrix/client/v3/user/${encodeURIComponent(userId)}/account_data/${encodeURIComponent(type)}`;

  it("stores secret-storage content as sent and reads it back", async () => {
    const alice = await register(h, "alice");
    const content = { encrypted: { KEYID: { iv: "aXY", ciphertext: "Y3Q", mac: "bWFj" } } };
    const put = await call(h, "PUT", path(alice.userId, "m.cross_signing.master"), {
      token: alice.token,
      body: content,
    });
    expect(put).toMatchObject({ status: 200, body: {} });
    const get = await call(h, "GET", path(alice.userId, "m.cross_signing.master"), { token: alice.token });
    expect(get).toMatchObject({ status: 200, body: content });
  });

  it("answers 404 M_NOT_FOUND for a type never set", async () => {
    const alice = await register(h, "alice");
    const get = await call(h, "GET", path(alice.userId, "m.secret_storage.default_key"), {
      token: alice.token,
    });
    expect(get.status).toBe(404);
    expect(get.body).toEqual({ errcode: "M_NOT_FOUND", error: "Account data not found" });
  });

  it("forbids reading or writing another user's account data", async () => {
    const alice = await register(h, "alice");
    const bob = await register(h, "bob");
    await call(h, "PUT", path(alice.userId, "secret"), { token: alice.token, body: { v: 1 } });
    const read = await call(h, "GET", path(alice.userId, "secret"), { token: bob.token });
    expect(read.status).toBe(403);
    expect(read.body.errcode).toBe("M_FORBIDDEN");
    const write = await call(h, "PUT", path(alice.userId, "secret"), { token: bob.token, body: { v: 2 } });
    expect(write.status).toBe(403);
    expect(h.homeserver.state.accountData.get(alice.userId, "secret")).toEqual({ v: 1 });
  });

  it("keeps an empty object as content on Synapse (MSC3391 off)", async () => {
    const alice = await register(h, "alice");
    await call(h, "PUT", path(alice.userId, "x"), { token: alice.token, body: {} });
    const get = await call(h, "GET", path(alice.userId, "x"), { token: alice.token });
    expect(get).toMatchObject({ status: 200, body: {} });
  });

  it("refuses m.push_rules and m.fully_read with 405 M_BAD_JSON, as Synapse does", async () => {
    const alice = await register(h, "alice");
    for (const type of ["m.push_rules", "m.fully_read"]) {
      const res = await call(h, "PUT", path(alice.userId, type), { token: alice.token, body: {} });
      expect(res.status).toBe(405);
      expect(res.body.errcode).toBe("M_BAD_JSON");
    }
  });

  it("refuses content that is not a JSON object", async () => {
    const alice = await register(h, "alice");
    const res = await call(h, "PUT", path(alice.userId, "x"), { token: alice.token, body: [1, 2] });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe("M_BAD_JSON");
    expect(h.homeserver.state.accountData.get(alice.userId, "x")).toBeUndefined();
  });

  it("says there is no key backup: 404 M_NOT_FOUND", async () => {
    const alice = await register(h, "alice");
    const res = await call(h, "GET", "/_matrix/client/v3/room_keys/version", { token: alice.token });
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ errcode: "M_NOT_FOUND", error: "No backup found" });
  });
});

describe.each(transports)("discovery (%s)", (transport) => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness(transport);
  });
  afterEach(async () => {
    await h.close();
  });

  it("serves /versions without auth, cacheable, with the profile's unstable features", async () => {
    const res = await call(h, "GET", "/_matrix/client/versions");
    expect(res.status).toBe(200);
    expect(res.body.versions).toContain("v1.12");
    expect(res.body.unstable_features).toMatchObject({
      "org.matrix.e2e_cross_signing": true,
      "org.matrix.simplified_msc3575": true,
      "com.beeper.msc4446": false,
    });
    expect(res.headers.get("cache-control")).toContain("public");
    expect(res.headers.get("vary")).toBe("Authorization");
  });

  it("checks a token sent to /versions, as Synapse does", async () => {
    const bad = await call(h, "GET", "/_matrix/client/versions", { token: "mock_stale" });
    expect(bad.status).toBe(401);
    expect(bad.body.errcode).toBe("M_UNKNOWN_TOKEN");
    const alice = await register(h, "alice");
    const good = await call(h, "GET", "/_matrix/client/versions", { token: alice.token });
    expect(good.status).toBe(200);
    expect(good.headers.get("cache-control")).not.toContain("public");
  });

  it("serves /capabilities to authenticated users only", async () => {
    expect((await call(h, "GET", "/_matrix/client/v3/capabilities")).status).toBe(401);
    const alice = await register(h, "alice");
    const res = await call(h, "GET", "/_matrix/client/v3/capabilities", { token: alice.token });
    expect(res.status).toBe(200);
    expect(res.body.capabilities).toMatchObject({
      "m.change_password": { enabled: true },
      "m.room_versions": { default: expect.any(String) },
    });
  });
});
