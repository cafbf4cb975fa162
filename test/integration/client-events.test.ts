import { initAsync } from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { E2eeClientEvents } from "../../src/client-options.js";
import { DEHYDRATED_DEVICE_PATH, dehydratedDeviceEventsPath } from "../../src/dehydration/device/names.js";
import type { RotationPassResult } from "../../src/dehydration/rotation/rotation.js";
import { decodeBase64 } from "../../src/secret-storage/base64.js";
import { type RunningMockServer, startMockServer } from "../../src/testing/index.js";
import { inClient, type TestClient } from "./support/client-mode.js";
import {
  bobSharesRoomKeys,
  type ClientEvent,
  decryptable,
  openClient,
  PASSWORD,
  passwordLogin,
  payloadsOf,
  type RoomMessage,
  recordEvents,
} from "./support/dehydration-drain-fixtures.js";

/**
 * `client.events` as an app sees it: one stream, every module's events under its prefix, in the
 * order things happened. The app here subscribes to nothing else (with `on`, for every name the
 * stream has) while a whole dehydrated-device run goes by over HTTP against the mock homeserver:
 * Alice's first device sets up cross-signing and starts the rotation, which uploads her first
 * dehydrated device; Bob sends her room keys while she is offline, so they wait on that device; a
 * new login restores from the recovery key and starts the rotation, which drains the device
 * (through one failed request, retried) and then replaces it. Every payload is plain data: it
 * survives `structuredClone` and, as JSON, shows no token and no key.
 */

const ROOMS = 3;
const EVENTS_PATTERN = `${DEHYDRATED_DEVICE_PATH}/{deviceId}/events`;

beforeAll(async () => {
  await initAsync();
});

/** Every text form of key bytes a sink might print: base64 (both paddings, URL-safe) and hex. */
function textForms(bytes: Uint8Array): string[] {
  const padded = Buffer.from(bytes).toString("base64");
  return [
    padded,
    padded.replace(/=+$/, ""),
    Buffer.from(bytes).toString("base64url"),
    Buffer.from(bytes).toString("hex"),
  ];
}

/** The dehydration key cached in `client`'s crypto store. */
async function dehydrationKeyOf(client: TestClient): Promise<Uint8Array> {
  const text = await inClient(client, "cachedDehydrationKey");
  const bytes = text === undefined ? undefined : decodeBase64(text);
  if (bytes === undefined) throw new Error("no dehydration key is cached");
  return bytes;
}

/** The private cross-signing key seeds `client` holds (unpadded base64, as crypto-wasm exports them). */
async function crossSigningSeedsOf(client: TestClient): Promise<string[]> {
  const exported = await inClient(client, "exportCrossSigningKeys");
  if (exported === undefined) throw new Error("no cross-signing keys to export");
  const seeds = [exported.masterKey, exported.self_signing_key, exported.userSigningKey];
  return seeds.filter((s): s is string => s !== undefined);
}

/**
 * The names in `seen`, each run of `crypto.requestSent` (how many depends on the machine) as one; a
 * key query's `crypto.keysQueried` is part of its `requestSent`.
 */
const collapsed = (seen: readonly ClientEvent[]) =>
  seen
    .map((e) => e.name)
    .filter((name) => name !== "crypto.keysQueried")
    .filter((name, i, names) => name !== "crypto.requestSent" || names[i - 1] !== name);

/** Where in `seen` the first event named `name` is (-1: none). */
const indexOf = (seen: readonly ClientEvent[], name: keyof E2eeClientEvents) =>
  seen.findIndex((e) => e.name === name);

describe("one event stream for a whole dehydrated-device run", () => {
  let server: RunningMockServer;
  const clients: TestClient[] = [];
  /** What the app on Alice's first device heard, and on her new login. */
  let firstSeen: ClientEvent[];
  let loginSeen: ClientEvent[];
  let userId: string;
  let firstDeviceId: string;
  let loginDeviceId: string;
  /** The dehydrated device the first device uploaded, and the one the new login replaced it with. */
  let dehydratedDeviceId: string;
  let replacementId: string;
  /** When each rotation said its next pass is due. */
  let firstDueAtMs: number;
  let loginDueAtMs: number;
  let messages: RoomMessage[];
  /** What must never show in a payload: tokens, the recovery key, key bytes in every text form. */
  const secrets: string[] = [];

  beforeAll(async () => {
    server = await startMockServer({ profile: "synapse-1.157" });
    const control = server.homeserver.control;
    const alice = control.createUser("alice", { password: PASSWORD })!;
    userId = alice.userId;
    firstDeviceId = alice.deviceId;
    secrets.push(alice.accessToken);

    // Alice's first device: cross-signing and secret storage, then the rotation, which uploads.
    const first = await openClient(server, alice);
    clients.push(first);
    firstSeen = recordEvents(first);
    const boot = await first.crossSigning.bootstrap({ createSecretStorageKey: true });
    const firstStart = await first.dehydration.start({ secretStorageKey: boot.secretStorageKey! });
    if (firstStart.action !== "replaced")
      throw new Error(`the first pass did not upload: ${firstStart.action}`);
    dehydratedDeviceId = firstStart.deviceId;
    firstDueAtMs = firstStart.dueAtMs;
    expect(control.dehydratedDevice(userId)?.deviceId).toBe(dehydratedDeviceId);
    secrets.push(boot.recoveryKey!, boot.recoveryKey!.replace(/\s+/g, ""));
    secrets.push(...textForms(boot.secretStorageKey!.key), ...textForms(await dehydrationKeyOf(first)));
    secrets.push(...(await crossSigningSeedsOf(first)));
    await first.dehydration.stop();
    await first.close();

    // Alice is offline on every device: Bob's room keys wait on the dehydrated device only.
    messages = await bobSharesRoomKeys(server, userId, ROOMS, "bob");
    expect(server.homeserver.state.toDevice.inbox(userId, dehydratedDeviceId)).toHaveLength(ROOMS);

    // A new login restores from the recovery key and starts the rotation: it drains, then replaces.
    const session = await passwordLogin(server, userId);
    loginDeviceId = session.deviceId;
    secrets.push(session.accessToken);
    const login = await openClient(server, session, {
      retry: { baseDelayMs: 1, maxDelayMs: 5, maxAttempts: 3 },
    });
    clients.push(login);
    loginSeen = recordEvents(login);
    const restored = await login.crossSigning.restoreFromRecoveryKey(boot.recoveryKey!);
    // The server fails the first events request once: the transport retries it, and says so.
    control.scriptFailure({ path: EVENTS_PATTERN, status: 503 });
    let loginStart: RotationPassResult;
    try {
      loginStart = await login.dehydration.start({
        rehydrate: true,
        secretStorageKey: restored.secretStorageKey,
      });
    } finally {
      control.clearScriptedFailures();
    }
    await login.dehydration.stop();
    if (loginStart.action !== "replaced")
      throw new Error(`the new login did not replace: ${loginStart.action}`);
    replacementId = loginStart.deviceId;
    loginDueAtMs = loginStart.dueAtMs;
    expect(await decryptable(login, messages)).toBe(ROOMS);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  });

  it("shows the first device bootstrapping, then uploading the dehydrated device and scheduling its rotation", () => {
    expect(firstSeen.filter((e) => e.name.startsWith("dehydration.")).map((e) => e.name)).toEqual([
      "dehydration.keyCached",
      "dehydration.uploaded",
      "dehydration.rotation.replaced",
      "dehydration.rotation.scheduled",
    ]);
    expect(payloadsOf(firstSeen, "dehydration.keyCached")).toEqual([{ source: "created" }]);
    expect(payloadsOf(firstSeen, "dehydration.uploaded")).toEqual([{ deviceId: dehydratedDeviceId }]);
    expect(payloadsOf(firstSeen, "dehydration.rotation.replaced")).toEqual([
      { previousDeviceId: undefined, deviceId: dehydratedDeviceId, reason: "no_device" },
    ]);
    expect(payloadsOf(firstSeen, "dehydration.rotation.scheduled")).toEqual([
      { deviceId: dehydratedDeviceId, dueAtMs: firstDueAtMs, reason: "interval" },
    ]);
    // The machine's requests of the bootstrap (its device keys first, then our own key query) on
    // the same stream, all before the upload; and nothing else: no retry, no failure of any kind.
    const sent = payloadsOf(firstSeen, "crypto.requestSent");
    expect(sent[0]).toEqual({ requestId: expect.any(String), kind: "KeysUpload" });
    expect(sent.map((s) => s.kind)).toContain("KeysQuery");
    expect(collapsed(firstSeen)).toEqual([
      // The device keys' upload (with its one-time and fallback keys), then the key queries.
      "crypto.requestSent",
      "crypto.keysUploaded",
      "crypto.requestSent",
      "dehydration.keyCached",
      "dehydration.uploaded",
      "dehydration.rotation.replaced",
      "dehydration.rotation.scheduled",
    ]);
  });

  it("shows the new login draining the waiting device page by page, then replacing it as a new login", () => {
    expect(loginSeen.filter((e) => e.name.startsWith("dehydration.")).map((e) => e.name)).toEqual([
      "dehydration.keyCached",
      "dehydration.drain.found",
      "dehydration.drain.rehydrated",
      ...Array<string>(payloadsOf(loginSeen, "dehydration.drain.page").length).fill("dehydration.drain.page"),
      "dehydration.drain.completed",
      "dehydration.uploaded",
      "dehydration.rotation.replaced",
      "dehydration.rotation.scheduled",
    ]);
    expect(payloadsOf(loginSeen, "dehydration.keyCached")).toEqual([{ source: "secret-storage" }]);
    expect(payloadsOf(loginSeen, "dehydration.drain.found")).toEqual([
      { deviceId: dehydratedDeviceId, resumeFrom: undefined },
    ]);
    expect(payloadsOf(loginSeen, "dehydration.drain.rehydrated")).toEqual([{ deviceId: dehydratedDeviceId }]);

    // Pages: at least one, all of the old device, together every room key Bob sent, the last one the end.
    const pages = payloadsOf(loginSeen, "dehydration.drain.page");
    expect(pages.length).toBeGreaterThanOrEqual(1);
    expect(pages.map((p) => p.deviceId)).toEqual(pages.map(() => dehydratedDeviceId));
    expect(pages.map((p) => p.page)).toEqual(pages.map((_, i) => i + 1));
    expect(pages.at(-1)!.next).toBe("end");
    const fromPages = pages.flatMap((p) => p.importedKeys);
    expect(fromPages).toHaveLength(ROOMS);
    expect(pages.reduce((n, p) => n + p.roomKeys, 0)).toBe(ROOMS);
    expect(new Set(fromPages.map((k) => k.roomId))).toEqual(new Set(messages.map((m) => m.roomId)));
    expect(new Set(fromPages.map((k) => k.senderKey))).toEqual(new Set([messages[0]!.senderKey]));

    const [completed] = payloadsOf(loginSeen, "dehydration.drain.completed");
    expect(completed).toMatchObject({
      deviceId: dehydratedDeviceId,
      totals: { events: ROOMS, roomKeys: ROOMS, pages: pages.length },
      run: { events: ROOMS, roomKeys: ROOMS, invalidEvents: 0 },
      resumedFrom: undefined,
    });
    expect(completed!.importedKeys).toEqual(fromPages);

    // Replaced only after the drain completed, by a device the server now has.
    expect(replacementId).not.toBe(dehydratedDeviceId);
    expect(server.homeserver.control.dehydratedDevice(userId)?.deviceId).toBe(replacementId);
    expect(payloadsOf(loginSeen, "dehydration.uploaded")).toEqual([{ deviceId: replacementId }]);
    expect(payloadsOf(loginSeen, "dehydration.rotation.replaced")).toEqual([
      { previousDeviceId: dehydratedDeviceId, deviceId: replacementId, reason: "new_login" },
    ]);
    expect(payloadsOf(loginSeen, "dehydration.rotation.scheduled")).toEqual([
      { deviceId: replacementId, dueAtMs: loginDueAtMs, reason: "interval" },
    ]);
  });

  it("carries the crypto and HTTP events on the same stream, in their place", () => {
    // The whole stream, each run of the machine's requests taken as one: those before the device
    // is opened (this login's device keys first, then key queries), then the drain with its one
    // retried request, then the replacement.
    const pages = payloadsOf(loginSeen, "dehydration.drain.page").length;
    expect(collapsed(loginSeen)).toEqual([
      // The device keys' upload (with its one-time and fallback keys), then the key queries.
      "crypto.requestSent",
      "crypto.keysUploaded",
      "crypto.requestSent",
      "dehydration.keyCached",
      "dehydration.drain.found",
      "dehydration.drain.rehydrated",
      "http.requestRetried",
      ...Array<string>(pages).fill("dehydration.drain.page"),
      "dehydration.drain.completed",
      "dehydration.uploaded",
      "dehydration.rotation.replaced",
      "dehydration.rotation.scheduled",
    ]);
    // No fallback key yet: crypto-wasm makes one only once a sync reports the fallback-key state.
    expect(payloadsOf(loginSeen, "crypto.keysUploaded")).toEqual([
      { oneTimeKeys: 50, fallbackKeys: 0, deviceKeys: true },
    ]);
    const sent = payloadsOf(loginSeen, "crypto.requestSent");
    expect(sent[0]).toEqual({ requestId: expect.any(String), kind: "KeysUpload" });
    expect(sent.map((s) => s.kind)).toContain("KeysQuery");
    for (const s of sent) expect(s.requestId).toEqual(expect.any(String));

    // The failed request: retried once, between opening the device and storing its first page.
    const retried = payloadsOf(loginSeen, "http.requestRetried");
    expect(retried).toEqual([
      expect.objectContaining({
        attempt: 1,
        status: 503,
        path: expect.stringContaining(dehydratedDeviceEventsPath(dehydratedDeviceId)),
      }),
    ]);
    const at = indexOf(loginSeen, "http.requestRetried");
    expect(at).toBeGreaterThan(indexOf(loginSeen, "dehydration.drain.rehydrated"));
    expect(at).toBeLessThan(indexOf(loginSeen, "dehydration.drain.page"));
    // No other transport event: the tokens stayed valid throughout.
    expect(loginSeen.filter((e) => e.name.startsWith("http.")).map((e) => e.name)).toEqual([
      "http.requestRetried",
    ]);
    expect(firstSeen.filter((e) => e.name.startsWith("http."))).toEqual([]);
  });

  it("names the devices it is about: the dehydrated ones, never the logins", () => {
    const ids = [...firstSeen, ...loginSeen].flatMap((e) =>
      typeof e.payload === "object" && e.payload !== null && "deviceId" in e.payload
        ? [e.payload.deviceId]
        : [],
    );
    expect(ids.length).toBeGreaterThan(0);
    expect(new Set(ids)).toEqual(new Set([dehydratedDeviceId, replacementId]));
    expect(ids).not.toContain(firstDeviceId);
    expect(ids).not.toContain(loginDeviceId);
  });

  it("hands over plain data: every payload survives structuredClone, and none shows a token or a key", () => {
    const all = [...firstSeen, ...loginSeen];
    expect(all.length).toBeGreaterThan(10);
    for (const { name, payload } of all) {
      expect(structuredClone(payload), name).toEqual(payload);
    }
    const json = JSON.stringify(all);
    expect(secrets.length).toBeGreaterThanOrEqual(12);
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThanOrEqual(8);
      // Reports a count only: printing the hit would leak the secret into the test output.
      expect(json.split(secret).length - 1, "a token or a key appeared in an event payload").toBe(0);
    }
  });
});
