import { DeviceId, initAsync, OlmMachine, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import {
  bootstrapCrossSigning,
  getCrossSigningStatus,
  isDeviceCrossSignedByOwner,
} from "../../src/crypto/cross-signing.js";
import { OutgoingRequestLoop } from "../../src/crypto/outgoing-requests.js";
import type { AuthDict, UiaChallenge } from "../../src/crypto/user-interactive-auth.js";
import { ManualClock } from "../../src/testing/manual-clock.js";
import { apiError, FakeMatrixHttp } from "./support/fake-matrix-http.js";
import { KeyServer } from "./support/key-server.js";

beforeAll(async () => {
  await initAsync();
});

async function device(server: KeyServer, userId: string, deviceId: string) {
  const machine = await OlmMachine.initialize(new UserId(userId), new DeviceId(deviceId));
  const http = server.attach(new FakeMatrixHttp(), userId, deviceId);
  const loop = new OutgoingRequestLoop({ machine, http, clock: new ManualClock() });
  return { machine, http, loop };
}

const uiaChallenge = (session: string, completed: string[] = []) =>
  apiError("POST", "/_matrix/client/v3/keys/device_signing/upload", 401, {
    flows: [{ stages: ["m.login.password"] }],
    params: {},
    session,
    completed,
  });

function masterKeyOf(call: { body: unknown }): string {
  const master = (call.body as { master_key: { keys: Record<string, string> } }).master_key;
  return Object.values(master.keys)[0]!;
}

describe("bootstrapCrossSigning", () => {
  it("uploads device keys, then the signing keys, then the signatures, in that order", async () => {
    const alice = await device(new KeyServer(), "@alice:test", "ALICE1");
    expect(await getCrossSigningStatus(alice.machine)).toEqual({
      hasMaster: false,
      hasSelfSigning: false,
      hasUserSigning: false,
    });

    await bootstrapCrossSigning({ machine: alice.machine, http: alice.http });

    expect(alice.http.calls.map((c) => `${c.method} ${c.endpoint}`)).toEqual([
      "POST /keys/upload",
      "POST /keys/device_signing/upload",
      "POST /keys/signatures/upload",
    ]);
    const signing = alice.http.calls[1]!;
    expect(Object.keys(signing.body as object).sort()).toEqual([
      "master_key",
      "self_signing_key",
      "user_signing_key",
    ]);
    expect(signing.retry).toBe("never");
    const signatures = alice.http.calls[2]!.body as Record<string, Record<string, unknown>>;
    expect(Object.keys(signatures["@alice:test"]!)).toContain("ALICE1");
    expect(await getCrossSigningStatus(alice.machine)).toEqual({
      hasMaster: true,
      hasSelfSigning: true,
      hasUserSigning: true,
    });
  });

  it("skips the device keys upload when the loop already sent them", async () => {
    const alice = await device(new KeyServer(), "@alice:test", "ALICE1");
    await alice.loop.run();
    const before = alice.http.calls.length;
    await bootstrapCrossSigning({ machine: alice.machine, http: alice.http });
    expect(alice.http.calls.slice(before).map((c) => c.endpoint)).toEqual([
      "/keys/device_signing/upload",
      "/keys/signatures/upload",
    ]);
  });

  it("republishes the existing identity unless asked to reset it", async () => {
    const alice = await device(new KeyServer(), "@alice:test", "ALICE1");
    await bootstrapCrossSigning({ machine: alice.machine, http: alice.http });
    await bootstrapCrossSigning({ machine: alice.machine, http: alice.http });
    await bootstrapCrossSigning({ machine: alice.machine, http: alice.http, reset: true });
    const masters = alice.http.callsTo("POST", "/keys/device_signing/upload").map(masterKeyOf);
    expect(masters[1]).toBe(masters[0]);
    expect(masters[2]).not.toBe(masters[0]);
  });

  it("answers the server's auth challenge through the app's callback and retries with the auth dict", async () => {
    const server = new KeyServer();
    const alice = await device(server, "@alice:test", "ALICE1");
    let attempts = 0;
    alice.http.on("POST", "/keys/device_signing/upload", (call) => {
      attempts++;
      const auth = (call.body as { auth?: AuthDict }).auth;
      if (auth?.type !== "m.login.password" || auth.session !== "S1") throw uiaChallenge("S1");
      return {};
    });
    const challenges: UiaChallenge[] = [];
    await bootstrapCrossSigning({
      machine: alice.machine,
      http: alice.http,
      authCallback: async (c) => {
        challenges.push(c);
        return { type: "m.login.password", identifier: { type: "m.id.user", user: "alice" }, password: "pw" };
      },
    });
    expect(attempts).toBe(2);
    expect(challenges.map((c) => c.flows)).toEqual([[{ stages: ["m.login.password"] }]]);
    const [first, second] = alice.http.callsTo("POST", "/keys/device_signing/upload");
    expect((first!.body as { auth?: unknown }).auth).toBeUndefined();
    expect((second!.body as { auth: AuthDict }).auth).toEqual({
      type: "m.login.password",
      identifier: { type: "m.id.user", user: "alice" },
      password: "pw",
      session: "S1",
    });
    // The keys themselves were sent unchanged on both attempts.
    expect(masterKeyOf(second!)).toBe(masterKeyOf(first!));
    expect(alice.http.callsTo("POST", "/keys/signatures/upload")).toHaveLength(1);
  });

  it("fails with a typed error and uploads no signatures when the callback declines", async () => {
    const alice = await device(new KeyServer(), "@alice:test", "ALICE1");
    alice.http.on("POST", "/keys/device_signing/upload", () => {
      throw uiaChallenge("S2");
    });
    await expect(
      bootstrapCrossSigning({
        machine: alice.machine,
        http: alice.http,
        authCallback: async () => undefined,
      }),
    ).rejects.toMatchObject({ name: "UserInteractiveAuthError", reason: "cancelled" });
    expect(alice.http.callsTo("POST", "/keys/device_signing/upload")).toHaveLength(1);
    expect(alice.http.callsTo("POST", "/keys/signatures/upload")).toEqual([]);
  });

  it("fails with a typed error when the server rejects signatures", async () => {
    const alice = await device(new KeyServer(), "@alice:test", "ALICE1");
    alice.http.on("POST", "/keys/signatures/upload", () => ({
      failures: { "@alice:test": { ALICE1: { errcode: "M_INVALID_SIGNATURE", error: "Invalid signature" } } },
    }));
    await expect(bootstrapCrossSigning({ machine: alice.machine, http: alice.http })).rejects.toMatchObject({
      code: "signature_upload_rejected",
      details: { failures: { "@alice:test": { ALICE1: "M_INVALID_SIGNATURE" } } },
    });
  });
});

describe("isDeviceCrossSignedByOwner", () => {
  it("tells a device its owner cross-signed from one not signed, and an unknown one", async () => {
    const server = new KeyServer();
    const bob1 = await device(server, "@bob:test", "BOB1");
    await bob1.loop.run();
    await bootstrapCrossSigning({ machine: bob1.machine, http: bob1.http });
    // A second device of Bob that Bob never signed.
    const bob2 = await device(server, "@bob:test", "BOB2");
    await bob2.loop.run();

    const alice = await device(server, "@alice:test", "ALICE1");
    await alice.machine.updateTrackedUsers([new UserId("@bob:test")]);
    await alice.loop.run();

    expect(await isDeviceCrossSignedByOwner(alice.machine, "@bob:test", "BOB1")).toBe(true);
    expect(await isDeviceCrossSignedByOwner(alice.machine, "@bob:test", "BOB2")).toBe(false);
    expect(await isDeviceCrossSignedByOwner(alice.machine, "@bob:test", "NOPE")).toBeUndefined();
  });

  it("rejects a malformed user id with a typed error", async () => {
    const alice = await device(new KeyServer(), "@alice:test", "ALICE1");
    await expect(isDeviceCrossSignedByOwner(alice.machine, "bob", "BOB1")).rejects.toMatchObject({
      code: "invalid_user_id",
    });
  });
});
