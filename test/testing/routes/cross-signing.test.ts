import { describe, expect, it } from "vitest";
import { harnessesOn, type StartHarness, transports } from "../support/transports.js";
import { deviceKeysFor, fakePublicKey, registerUser, type TestDevice } from "./e2ee-test-users.js";

function crossSigningKeys(user: Pick<TestDevice, "userId">, seed = "v1") {
  const masterPub = fakePublicKey(`${seed}-master`);
  const sskPub = fakePublicKey(`${seed}-ssk`);
  const uskPub = fakePublicKey(`${seed}-usk`);
  const signedByMaster = { [user.userId]: { [`ed25519:${masterPub}`]: `master-signature-${seed}` } };
  return {
    masterPub,
    sskPub,
    uskPub,
    body: {
      master_key: { user_id: user.userId, usage: ["master"], keys: { [`ed25519:${masterPub}`]: masterPub } },
      self_signing_key: {
        user_id: user.userId,
        usage: ["self_signing"],
        keys: { [`ed25519:${sskPub}`]: sskPub },
        signatures: signedByMaster,
      },
      user_signing_key: {
        user_id: user.userId,
        usage: ["user_signing"],
        keys: { [`ed25519:${uskPub}`]: uskPub },
        signatures: signedByMaster,
      },
    },
  };
}

async function setup(start: StartHarness) {
  const server = await start();
  const alice = await registerUser(server, "alice");
  const bob = await registerUser(server, "bob");
  return { mock: server.homeserver, alice, bob };
}

describe.each(transports)("POST keys/device_signing/upload (%s)", (transport) => {
  const start = harnessesOn(transport);

  it("accepts the first upload without UIA and shows master and self-signing keys to others", async () => {
    const { mock, alice, bob } = await setup(start);
    const keys = crossSigningKeys(alice);
    const from = mock.state.keys.position;

    const res = await alice.call("POST", "keys/device_signing/upload", keys.body);
    const bobView = await bob.call("POST", "keys/query", { device_keys: { [alice.userId]: [] } });
    const aliceView = await alice.call("POST", "keys/query", { device_keys: { [alice.userId]: [] } });

    expect(res).toEqual({ status: 200, body: {} });
    expect(bobView.body.master_keys).toEqual({ [alice.userId]: keys.body.master_key });
    expect(bobView.body.self_signing_keys).toEqual({ [alice.userId]: keys.body.self_signing_key });
    expect(bobView.body.user_signing_keys).toEqual({});
    expect(aliceView.body.user_signing_keys).toEqual({ [alice.userId]: keys.body.user_signing_key });
    expect(mock.state.keys.changedUsersSince(bob.userId, from)).toEqual([alice.userId]);
  });

  it("accepts the same keys again without UIA but asks for UIA to replace them", async () => {
    const { alice, bob } = await setup(start);
    await alice.call("POST", "keys/device_signing/upload", crossSigningKeys(alice).body);
    const replacement = crossSigningKeys(alice, "v2");

    const again = await alice.call("POST", "keys/device_signing/upload", crossSigningKeys(alice).body);
    const challenge = await alice.call("POST", "keys/device_signing/upload", replacement.body);
    const stillOld = await bob.call("POST", "keys/query", { device_keys: { [alice.userId]: [] } });
    const done = await alice.call("POST", "keys/device_signing/upload", {
      ...replacement.body,
      auth: { type: "m.login.dummy", session: challenge.body.session },
    });
    const nowNew = await bob.call("POST", "keys/query", { device_keys: { [alice.userId]: [] } });

    expect(again).toEqual({ status: 200, body: {} });
    expect(challenge.status).toBe(401);
    expect(challenge.body.flows).toContainEqual({ stages: ["m.login.dummy"] });
    expect(typeof challenge.body.session).toBe("string");
    expect(stillOld.body.master_keys).toEqual({ [alice.userId]: crossSigningKeys(alice).body.master_key });
    expect(done).toEqual({ status: 200, body: {} });
    expect(nowNew.body.master_keys).toEqual({ [alice.userId]: replacement.body.master_key });
  });

  it.each([
    [
      "a master key of another user",
      (b: Body) => ({ ...b, master_key: { ...b.master_key, user_id: "@bob:localhost" } }),
    ],
    [
      "a master key with the wrong usage",
      (b: Body) => ({ ...b, master_key: { ...b.master_key, usage: ["self_signing"] } }),
    ],
    [
      "a master key with two keys",
      (b: Body) => ({ ...b, master_key: { ...b.master_key, keys: { a: "x", b: "y" } } }),
    ],
    [
      "a master key that is not Ed25519",
      (b: Body) => ({ ...b, master_key: { ...b.master_key, keys: { "curve25519:x": "x" } } }),
    ],
  ])("refuses %s with 400 M_INVALID_PARAM and stores nothing", async (_name, change) => {
    const { mock, alice } = await setup(start);
    const res = await alice.call("POST", "keys/device_signing/upload", change(crossSigningKeys(alice).body));
    expect(res).toMatchObject({ status: 400, body: { errcode: "M_INVALID_PARAM" } });
    expect(mock.state.keys.crossSigningPublicKey(alice.userId, "master")).toBeUndefined();
  });

  it("refuses a self-signing key the master key did not sign with 400 M_INVALID_SIGNATURE", async () => {
    const { alice } = await setup(start);
    const { body } = crossSigningKeys(alice);
    const res = await alice.call("POST", "keys/device_signing/upload", {
      ...body,
      self_signing_key: { ...body.self_signing_key, signatures: {} },
    });
    expect(res).toMatchObject({ status: 400, body: { errcode: "M_INVALID_SIGNATURE" } });
  });

  it("refuses a self-signing key without any master key with 400 M_MISSING_PARAM", async () => {
    const { alice } = await setup(start);
    const res = await alice.call("POST", "keys/device_signing/upload", {
      self_signing_key: crossSigningKeys(alice).body.self_signing_key,
    });
    expect(res).toMatchObject({ status: 400, body: { errcode: "M_MISSING_PARAM" } });
  });

  it("answers a key that is not an object with 400 M_BAD_JSON", async () => {
    const { alice } = await setup(start);
    const res = await alice.call("POST", "keys/device_signing/upload", { master_key: "not an object" });
    expect(res).toMatchObject({ status: 400, body: { errcode: "M_BAD_JSON" } });
  });
});

type Body = ReturnType<typeof crossSigningKeys>["body"];

describe.each(transports)("POST keys/signatures/upload (%s)", (transport) => {
  const start = harnessesOn(transport);

  async function crossSignedAlice() {
    const ctx = await setup(start);
    const keys = crossSigningKeys(ctx.alice);
    await ctx.alice.call("POST", "keys/device_signing/upload", keys.body);
    await ctx.alice.call("POST", "keys/upload", { device_keys: deviceKeysFor(ctx.alice) });
    return { ...ctx, keys };
  }

  it("merges a self-signing signature on the caller's device into everyone's query", async () => {
    const { mock, alice, bob, keys } = await crossSignedAlice();
    const sskId = `ed25519:${keys.sskPub}`;
    const signed = deviceKeysFor(alice);
    signed.signatures[alice.userId]![sskId] = "ssk-signature";
    const from = mock.state.keys.position;

    const res = await alice.call("POST", "keys/signatures/upload", {
      [alice.userId]: { [alice.deviceId]: signed },
    });
    const query = await bob.call("POST", "keys/query", { device_keys: { [alice.userId]: [alice.deviceId] } });

    expect(res).toEqual({ status: 200, body: { failures: {} } });
    const device = (query.body.device_keys as Record<string, Record<string, { signatures: unknown }>>)[
      alice.userId
    ]![alice.deviceId]!;
    expect(device.signatures).toEqual({
      [alice.userId]: { [`ed25519:${alice.deviceId}`]: "device-self-signature", [sskId]: "ssk-signature" },
    });
    expect(mock.state.keys.changedUsersSince(bob.userId, from)).toEqual([alice.userId]);
  });

  it("stores a device's signature on the caller's master key", async () => {
    const { mock, alice, keys } = await crossSignedAlice();
    const deviceKeyId = `ed25519:${alice.deviceId}`;
    const master = {
      ...keys.body.master_key,
      signatures: { [alice.userId]: { [deviceKeyId]: "device-sig" } },
    };

    const res = await alice.call("POST", "keys/signatures/upload", {
      [alice.userId]: { [keys.masterPub]: master },
    });

    expect(res.body).toEqual({ failures: {} });
    expect(mock.state.keys.crossSigningKey(alice.userId, "master", alice.userId)?.signatures).toEqual({
      [alice.userId]: { [deviceKeyId]: "device-sig" },
    });
  });

  it("reports failures per device in Synapse's shape and stores nothing for them", async () => {
    const { mock, alice, keys } = await crossSignedAlice();
    const sskId = `ed25519:${keys.sskPub}`;
    const changed = deviceKeysFor(alice, "tampered");
    changed.signatures[alice.userId]![sskId] = "sig";
    const unknown = { ...deviceKeysFor({ userId: alice.userId, deviceId: "NOSUCH" }) };
    unknown.signatures[alice.userId]![sskId] = "sig";

    const res = await alice.call("POST", "keys/signatures/upload", {
      [alice.userId]: { [alice.deviceId]: changed, NOSUCH: unknown, UNSIGNED: { signatures: {} } },
    });

    expect(res).toEqual({
      status: 200,
      body: {
        failures: {
          [alice.userId]: {
            [alice.deviceId]: { status: 400, errcode: "M_UNKNOWN", message: "400: Key does not match" },
            NOSUCH: { status: 404, errcode: "M_NOT_FOUND", message: "404: Unknown device" },
            UNSIGNED: { status: 400, errcode: "M_INVALID_SIGNATURE", message: "400: Invalid signature" },
          },
        },
      },
    });
    expect(mock.state.keys.deviceKeys(alice.userId, alice.deviceId)?.signatures).toEqual(
      deviceKeysFor(alice).signatures,
    );
  });

  it("fails every entry when the caller has no self-signing key", async () => {
    const { alice } = await setup(start);
    await alice.call("POST", "keys/upload", { device_keys: deviceKeysFor(alice) });

    const res = await alice.call("POST", "keys/signatures/upload", {
      [alice.userId]: { [alice.deviceId]: deviceKeysFor(alice) },
    });

    expect(res.body).toEqual({
      failures: {
        [alice.userId]: {
          [alice.deviceId]: {
            status: 404,
            errcode: "M_NOT_FOUND",
            message: `404: No self_signing key found for ${alice.userId}`,
          },
        },
      },
    });
  });

  it("shows a user-signing signature on another user's master key only to its signer", async () => {
    const { mock, alice, bob, keys: aliceKeys } = await crossSignedAlice();
    const bobKeys = crossSigningKeys(bob, "bob");
    await bob.call("POST", "keys/device_signing/upload", bobKeys.body);
    const uskId = `ed25519:${aliceKeys.uskPub}`;
    const signedMaster = {
      ...bobKeys.body.master_key,
      signatures: { [alice.userId]: { [uskId]: "usk-sig" } },
    };
    const from = mock.state.keys.position;

    const res = await alice.call("POST", "keys/signatures/upload", {
      [bob.userId]: { [bobKeys.masterPub]: signedMaster },
    });
    const aliceView = await alice.call("POST", "keys/query", { device_keys: { [bob.userId]: [] } });
    const bobView = await bob.call("POST", "keys/query", { device_keys: { [bob.userId]: [] } });

    expect(res.body).toEqual({ failures: {} });
    expect(aliceView.body.master_keys).toEqual({ [bob.userId]: signedMaster });
    expect(bobView.body.master_keys).toEqual({ [bob.userId]: bobKeys.body.master_key });
    expect(mock.state.keys.changedUsersSince(alice.userId, from)).toEqual([bob.userId]);
    expect(mock.state.keys.changedUsersSince(bob.userId, from)).toEqual([]);
  });

  it("fails a signature on another user without a user-signing key, and on anything but their master key", async () => {
    const { alice, bob, keys: aliceKeys } = await crossSignedAlice();
    const bobKeys = crossSigningKeys(bob, "bob");
    const { user_signing_key: _none, ...withoutUserSigning } = bobKeys.body;
    await bob.call("POST", "keys/device_signing/upload", withoutUserSigning);

    const res = await alice.call("POST", "keys/signatures/upload", {
      [bob.userId]: {
        [bobKeys.masterPub]: {
          ...bobKeys.body.master_key,
          signatures: { [alice.userId]: { [`ed25519:${aliceKeys.uskPub}`]: "s" } },
        },
        [bob.deviceId]: deviceKeysFor(bob),
      },
    });
    const withoutUsk = await bob.call("POST", "keys/signatures/upload", {
      [alice.userId]: { [aliceKeys.masterPub]: aliceKeys.body.master_key },
    });

    expect(res.body).toEqual({
      failures: {
        [bob.userId]: {
          [bob.deviceId]: { status: 404, errcode: "M_NOT_FOUND", message: "404: Unknown device" },
        },
      },
    });
    expect(withoutUsk.body).toEqual({
      failures: {
        [alice.userId]: {
          [aliceKeys.masterPub]: {
            status: 404,
            errcode: "M_NOT_FOUND",
            message: `404: No user_signing key found for ${bob.userId}`,
          },
        },
      },
    });
  });

  it("answers an entry that is not an object with 400 M_INVALID_PARAM and stores nothing", async () => {
    const { mock, alice, keys } = await crossSignedAlice();
    const signed = deviceKeysFor(alice);
    signed.signatures[alice.userId]![`ed25519:${keys.sskPub}`] = "ssk-signature";

    const res = await alice.call("POST", "keys/signatures/upload", {
      [alice.userId]: { [alice.deviceId]: signed, OTHER: "not an object" },
    });

    expect(res).toMatchObject({ status: 400, body: { errcode: "M_INVALID_PARAM" } });
    expect(mock.state.keys.deviceKeys(alice.userId, alice.deviceId)?.signatures).toEqual(
      deviceKeysFor(alice).signatures,
    );
  });

  it("answers a body that is not JSON with 400 M_NOT_JSON", async () => {
    const { alice } = await setup(start);
    expect(await alice.call("POST", "keys/signatures/upload", "{")).toMatchObject({
      status: 400,
      body: { errcode: "M_NOT_JSON" },
    });
  });
});
