/**
 * The README's flow, end to end, in Node against the mock homeserver over HTTP:
 * a first device sets up cross-signing, secret storage and a dehydrated device; a second login
 * with only the recovery key restores cross-signing and drains the dehydrated device.
 *
 * Run: `npx tsx examples/node-quickstart.ts`. CI runs it (test/examples.test.ts).
 */
import { createE2eeClient, type E2eeClient, isSdkError } from "matrix-e2ee-devices";
import { startMockServer } from "matrix-e2ee-devices/testing";

const server = await startMockServer({ port: 0 });
try {
  // An account on the mock: a user with one logged-in device (a real app gets these from its login).
  const password = "correct horse battery staple";
  const alice = server.homeserver.control.createUser("alice", { password });
  if (alice === undefined) throw new Error("the mock refused to create alice");
  const uiaCallback = async (challenge: { session?: string | undefined }) => ({
    type: "m.login.password",
    identifier: { type: "m.id.user", user: "alice" },
    password,
    session: challenge.session,
  });

  // First device. In Node, without `cryptoStore`, the crypto state lives in memory; in a browser
  // or Electron renderer pass `cryptoStore: { name, passphrase }` to keep it in IndexedDB.
  const first = await createE2eeClient({ baseUrl: server.url, ...alice, uiaCallback });
  first.events.on("crypto.requestFailed", (e) => console.warn("request failed, retrying:", e.kind));
  const { recoveryKey, secretStorageKey } = await first.crossSigning.bootstrap({
    createSecretStorageKey: true,
  });
  if (recoveryKey === undefined || secretStorageKey === undefined) throw new Error("no recovery key");
  console.log("first device: cross-signing set up; recovery key shown to the user once");
  console.log("the key prints as", String(secretStorageKey)); // only its id, never its bytes

  if (!(await first.dehydration.isSupported())) throw new Error("the server lacks MSC3814");
  // Uploads a dehydrated device now and replaces it weekly, each time only after draining it.
  // The rotation runs on timers until `stop()` or `close()`.
  const pass = await first.dehydration.start({ secretStorageKey });
  console.log("first device: rotation started:", pass.action);
  await first.close();

  // A new login (here through the mock's login endpoint, as an app's own login would).
  const login = await fetch(`${server.url}/_matrix/client/v3/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      type: "m.login.password",
      identifier: { type: "m.id.user", user: "alice" },
      password,
    }),
  });
  const session = (await login.json()) as { user_id: string; device_id: string; access_token: string };
  const second: E2eeClient = await createE2eeClient({
    baseUrl: server.url,
    userId: session.user_id,
    deviceId: session.device_id,
    accessToken: session.access_token,
  });
  second.events.on("dehydration.drain.page", (page) =>
    console.log("drain: page with", page.events, "events"),
  );

  // Only the recovery key: restore cross-signing, then rehydrate and drain the dehydrated device.
  const restored = await second.crossSigning.restoreFromRecoveryKey(recoveryKey);
  console.log(
    "second device: restored",
    restored.restored.join(", "),
    "; signed:",
    restored.deviceCrossSigned,
  );
  const result = await second.dehydration.drain({ secretStorageKey: restored.secretStorageKey });
  if (result.outcome !== "completed") throw new Error(`drain ended ${result.outcome}`);
  console.log(`second device: drained ${result.deviceId}: ${result.totals.roomKeys} room keys`);
  await second.close();
  console.log("ok");
} catch (error) {
  console.error(isSdkError(error) ? `failed: ${error.code}: ${error.message}` : error);
  process.exitCode = 1;
} finally {
  await server.close();
}
