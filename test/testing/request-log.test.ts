import { describe, expect, it } from "vitest";
import { DEHYDRATED_DEVICE_PATH } from "../../src/testing/index.js";
import { dehydrated, dehydratedDeviceId, eventsPath, putBody } from "./routes/dehydrated-device-helpers.js";
import { registerUser } from "./routes/e2ee-test-users.js";
import { call, harnessesOn, transports } from "./support/transports.js";

/** Request bodies in the request log, with secrets redacted, in-process and over a socket. */

const REDACTED = "<redacted>";

describe.each(transports)("request bodies in the request log (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("shows which next_batch each dehydrated-device events POST asked for, and no secret", async () => {
    const h = await start({ profile: "synapse-1.157" });
    const alice = await registerUser(h, "alice");
    const bob = await registerUser(h, "bob");
    const deviceId = dehydratedDeviceId("logged");
    expect((await dehydrated(h, bob, "PUT", "", putBody(bob, deviceId, "logged"))).status).toBe(200);
    for (let n = 1; n <= 5; n++) {
      const content = {
        algorithm: "m.olm.v1.curve25519-aes-sha2",
        n,
        ciphertext: { k: { body: `olm-${n}` } },
      };
      const sent = await alice.call("PUT", `sendToDevice/m.room.encrypted/log-${n}`, {
        messages: { [bob.userId]: { [deviceId]: content } },
      });
      expect(sent.status).toBe(200);
    }

    // A drain client following next_batch with POST, two messages a page.
    const asked: (string | undefined)[] = [];
    let nextBatch: string | undefined;
    for (let page = 0; page < 10; page++) {
      asked.push(nextBatch);
      const res = await dehydrated(h, bob, "POST", eventsPath(deviceId, "?limit=2"), {
        ...(nextBatch !== undefined ? { next_batch: nextBatch } : {}),
      });
      expect(res.status).toBe(200);
      if ((res.body.events as unknown[]).length === 0) break;
      nextBatch = res.body.next_batch as string;
    }
    expect(asked).toHaveLength(4);

    const eventsLogPath = `${DEHYDRATED_DEVICE_PATH}${eventsPath(deviceId)}`;
    const log = h.homeserver.control.requestLog();
    const posts = log.filter((e) => e.method === "POST" && e.path === eventsLogPath);
    expect(posts.map((e) => (e.body as { next_batch?: string }).next_batch)).toEqual(asked);
    expect(posts.map((e) => e.query)).toEqual(Array(4).fill("limit=2"));

    const wire = (await call(h, "GET", "/_mock/requests")).body.requests as Record<string, unknown>[];
    const wirePosts = wire.filter((e) => e.method === "POST" && e.path === eventsLogPath);
    expect(wirePosts.map((e) => (e.body as { next_batch?: string }).next_batch ?? null)).toEqual(
      asked.map((a) => a ?? null),
    );

    const put = log.find((e) => e.method === "PUT" && e.path === DEHYDRATED_DEVICE_PATH);
    expect(put?.body).toMatchObject({
      device_id: deviceId,
      device_data: { algorithm: "org.matrix.msc3814.v2", device_pickle: REDACTED, nonce: REDACTED },
    });
    const send = log.find((e) => e.path.endsWith("/sendToDevice/m.room.encrypted/log-1"));
    expect(send?.body).toEqual({
      messages: {
        [bob.userId]: {
          [deviceId]: { algorithm: "m.olm.v1.curve25519-aes-sha2", n: 1, ciphertext: REDACTED },
        },
      },
    });
    const register = log.find((e) => e.path === "/_matrix/client/v3/register");
    expect(register?.body).toEqual({ username: "alice", password: REDACTED, auth: REDACTED });

    for (const text of [JSON.stringify(log), JSON.stringify(wire)]) {
      for (const secret of [alice.accessToken, bob.accessToken, "alice-password", "pickle-logged", "olm-1"]) {
        expect(text).not.toContain(secret);
      }
    }
  });

  it("cuts the request's own token out of the body, and keeps text that is not JSON", async () => {
    const h = await start();
    const alice = await registerUser(h, "alice");
    const path = `/_matrix/client/v3/user/${encodeURIComponent(alice.userId)}/account_data/x`;

    const put = await call(h, "PUT", `${path}?access_token=${alice.accessToken}`, {
      body: { note: `my token is ${alice.accessToken}` },
    });
    const notJson = await call(h, "POST", "/_matrix/client/v3/keys/query", {
      token: alice.accessToken,
      body: "{nope",
    });
    await call(h, "GET", "/_matrix/client/v3/account/whoami", { token: alice.accessToken });

    expect([put.status, notJson.status]).toEqual([200, 400]);
    const log = h.homeserver.control.requestLog();
    expect(log.slice(-3).map((e) => e.body)).toEqual([
      { note: `my token is ${REDACTED}` },
      "{nope",
      undefined,
    ]);
    expect(JSON.stringify(log)).not.toContain(alice.accessToken);
  });
});
