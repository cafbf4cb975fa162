import {
  DecryptionSettings,
  DeviceId,
  DeviceLists,
  EncryptionSettings,
  LocalTrust,
  RoomId,
  TrustRequirement,
  UserId,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { z } from "zod";
import { clientInternals, type E2eeClient } from "../../../src/client.js";
import { claimMissingSessions } from "../../../src/crypto/claim-sessions.js";
import { getCrossSigningStatus, isDeviceCrossSignedByOwner } from "../../../src/crypto/cross-signing.js";
import { sendOutgoingRequest } from "../../../src/crypto/send-outgoing-request.js";
import { DEHYDRATION_KEY_SECRET_NAMES } from "../../../src/dehydration/device/names.js";
import { createMatrixHttp } from "../../../src/http/matrix-http.js";
import type { SecretStorageKey } from "../../../src/secret-storage/secret-storage.js";
import { SyncPositionStore, type SyncPositions } from "../../../src/sync/sync-position-store.js";
import { workerClock } from "./in-worker-setup.js";

/**
 * What the integration tests do with a client's crypto-wasm machine (`client.olmMachine`), as
 * functions of the client: `inClient` (client-mode.ts) calls them with the in-thread client, or
 * inside the worker through `runInWorker`. Arguments and results are data (wasm objects cannot
 * cross a thread); nothing here holds state between calls.
 */

/** The devices the client's machine knows for `userId`, sorted. */
export async function knownDevices(client: E2eeClient, userId: string): Promise<string[]> {
  const devices = await client.olmMachine.getUserDevices(new UserId(userId));
  try {
    return devices
      .devices()
      .map((d) => d.deviceId.toString())
      .sort();
  } finally {
    devices.free();
  }
}

/** Whether the client's machine knows `userId`'s device `deviceId`. */
export async function knowsDevice(client: E2eeClient, userId: string, deviceId: string): Promise<boolean> {
  const device = await client.olmMachine.getDevice(new UserId(userId), new DeviceId(deviceId));
  const known = device !== undefined;
  device?.free();
  return known;
}

/** Makes the client fetch `users`' device lists again, as a device-list change in /sync would. */
export async function refreshDeviceLists(client: E2eeClient, users: string[]): Promise<void> {
  await client.olmMachine.updateTrackedUsers(users.map((u) => new UserId(u)));
  await client.olmMachine.receiveSyncChanges(
    "[]",
    new DeviceLists(users.map((u) => new UserId(u))),
    new Map([["signed_curve25519", 50]]),
    new Set(),
  );
  await client.processOutgoingRequests();
}

/** The machine's own reading of its cross-signing keys. */
export function crossSigningStatus(client: E2eeClient) {
  return getCrossSigningStatus(client.olmMachine);
}

/** Whether the client's machine sees `userId`'s `deviceId` as cross-signed by its owner. */
export function deviceCrossSignedByOwner(client: E2eeClient, userId: string, deviceId: string) {
  return isDeviceCrossSignedByOwner(client.olmMachine, userId, deviceId);
}

/** The private cross-signing keys the machine holds (to compare two devices'), as data. */
export async function exportCrossSigningKeys(client: E2eeClient) {
  const exported = await client.olmMachine.exportCrossSigningKeys();
  if (exported === undefined) return undefined;
  return {
    masterKey: exported.masterKey,
    self_signing_key: exported.self_signing_key,
    userSigningKey: exported.userSigningKey,
  };
}

const sendToDeviceResponse = z.looseObject({});

/**
 * Olm-encrypts `content` for `userId`'s device `deviceId` (claiming a one-time key first) and
 * sends it over the client's own transport; returns the encrypted content sent.
 */
export async function sendEncryptedToDevice(
  client: E2eeClient,
  userId: string,
  deviceId: string,
  type: string,
  content: Record<string, unknown>,
): Promise<unknown> {
  const http = clientInternals(client).http;
  await claimMissingSessions(client.olmMachine, http, [userId]);
  const device = await client.olmMachine.getDevice(new UserId(userId), new DeviceId(deviceId));
  if (!device) throw new Error("the sender does not know the recipient's device");
  const sent: unknown = JSON.parse(await device.encryptToDeviceEvent(type, content));
  await http.request({
    method: "PUT",
    path: `/_matrix/client/v3/sendToDevice/m.room.encrypted/${encodeURIComponent(crypto.randomUUID())}`,
    body: { messages: { [userId]: { [deviceId]: sent } } },
    schema: sendToDeviceResponse,
    retry: "safe",
  });
  return sent;
}

/** Hands `events` to the machine as a sync's to-device events; returns each processed event's raw JSON. */
export async function receiveToDevice(client: E2eeClient, events: unknown[]): Promise<string[]> {
  const processed = await client.olmMachine.receiveSyncChanges(
    JSON.stringify(events),
    new DeviceLists(),
    new Map([["signed_curve25519", 50]]),
    new Set(),
  );
  return processed.map((p) => (p as { rawEvent: string }).rawEvent);
}

/** The machine's own identity keys, base64. */
export function identityKeys(client: E2eeClient): { curve25519: string; ed25519: string } {
  const keys = client.olmMachine.identityKeys;
  return { curve25519: keys.curve25519.toBase64(), ed25519: keys.ed25519.toBase64() };
}

const LOCAL_TRUST = {
  blacklisted: LocalTrust.BlackListed,
  ignored: LocalTrust.Ignored,
  unset: LocalTrust.Unset,
  verified: LocalTrust.Verified,
} as const;

/** Sets the local trust of `userId`'s device `deviceId`, which the machine must know. */
export async function setLocalTrust(
  client: E2eeClient,
  userId: string,
  deviceId: string,
  trust: keyof typeof LOCAL_TRUST,
): Promise<void> {
  const device = await client.olmMachine.getDevice(new UserId(userId), new DeviceId(deviceId));
  if (device === undefined) throw new Error(`the machine does not know ${userId}'s ${deviceId}`);
  try {
    await device.setLocalTrust(LOCAL_TRUST[trust]);
  } finally {
    device.free();
  }
}

/** The users the machine tracks the device lists of. */
export async function trackedUsers(client: E2eeClient): Promise<string[]> {
  return [...(await client.olmMachine.trackedUsers())].map((u) => u.toString());
}

/** How many verification requests the machine holds with `userId`. */
export function verificationRequestCount(client: E2eeClient, userId: string): number {
  return client.olmMachine.getVerificationRequests(new UserId(userId)).length;
}

/** Every room key the machine holds, exported as JSON. */
export function exportRoomKeys(client: E2eeClient): Promise<string> {
  return client.olmMachine.exportRoomKeys(() => true);
}

/**
 * Stores a secret of the app's own in secret storage under the key `recoveryKey` unlocks (`store`
 * of an arbitrary secret is not on the face: it stores only what its own flows need).
 */
export async function storeSecret(client: E2eeClient, recoveryKey: string, name: string, value: string) {
  const key = await client.secretStorage.unlockWithRecoveryKey(recoveryKey);
  await clientInternals(client).secretStorage.store(name, value, key);
}

/** Reads back a secret `storeSecret` stored. */
export async function getSecret(client: E2eeClient, recoveryKey: string, name: string) {
  const key = await client.secretStorage.unlockWithRecoveryKey(recoveryKey);
  return clientInternals(client).secretStorage.get(name, key);
}

/**
 * Readies the client to Olm-encrypt for `userId`'s device `deviceId`: queries the user's keys and
 * claims a one-time key, over the client's own transport.
 */
export async function prepareOlmSession(client: E2eeClient, userId: string, deviceId: string): Promise<void> {
  await client.olmMachine.updateTrackedUsers([new UserId(userId)]);
  await client.processOutgoingRequests();
  await claimMissingSessions(client.olmMachine, clientInternals(client).http, [userId]);
  if (!(await knowsDevice(client, userId, deviceId))) {
    throw new Error("the sender does not know the recipient's device");
  }
}

/** Olm-encrypts a to-device event for `userId`'s device `deviceId`; returns the encrypted content. */
export async function encryptToDevice(
  client: E2eeClient,
  userId: string,
  deviceId: string,
  type: string,
  content: Record<string, unknown>,
): Promise<unknown> {
  const device = await client.olmMachine.getDevice(new UserId(userId), new DeviceId(deviceId));
  if (!device) throw new Error("the sender does not know the recipient's device");
  try {
    return JSON.parse(await device.encryptToDeviceEvent(type, content));
  } finally {
    device.free();
  }
}

const counted = new WeakMap<E2eeClient, Map<string, number>>();

/**
 * Starts counting the calls of the machine's method `method` (as `vi.spyOn` would, which does not
 * exist inside a worker): the method still runs. Read the count with `machineCallCount`.
 */
export function countMachineCalls(client: E2eeClient, method: string): void {
  const counts = counted.get(client) ?? new Map<string, number>();
  counted.set(client, counts);
  if (counts.has(method)) return;
  counts.set(method, 0);
  const machine = client.olmMachine as unknown as Record<string, (...args: unknown[]) => unknown>;
  const original = machine[method];
  if (typeof original !== "function") throw new TypeError(`the machine has no method ${method}`);
  machine[method] = function (this: unknown, ...args: unknown[]) {
    counts.set(method, (counts.get(method) ?? 0) + 1);
    return original.apply(this, args);
  };
}

/** How many times `method` was called since `countMachineCalls`. */
export function machineCallCount(client: E2eeClient, method: string): number {
  const count = counted.get(client)?.get(method);
  if (count === undefined) throw new Error(`${method} is not counted: call countMachineCalls first`);
  return count;
}

/** Starts tracking `users`' device lists, as an app does for the members of its encrypted rooms. */
export async function trackUsers(client: E2eeClient, users: string[]): Promise<void> {
  await client.olmMachine.updateTrackedUsers(users.map((u) => new UserId(u)));
}

/** Marks every tracked user's device list dirty, so the next keys/query asks for all of them. */
export async function markAllTrackedUsersAsDirty(client: E2eeClient): Promise<void> {
  await client.olmMachine.markAllTrackedUsersAsDirty();
}

/** The sync positions the client stored, as a reload would read them. */
export function storedSyncPositions(client: E2eeClient): Promise<SyncPositions> {
  return syncPositionStore(client).load();
}

/** Overwrites the client's stored sync positions, as an earlier version might have left them. */
export function storeSyncPositions(client: E2eeClient, positions: SyncPositions): Promise<void> {
  return syncPositionStore(client).save(positions);
}

function syncPositionStore(client: E2eeClient): SyncPositionStore {
  return new SyncPositionStore({
    stateStore: clientInternals(client).stateStore,
    userId: client.userId,
    deviceId: client.deviceId,
    cryptoStoreDurability: "memory",
  });
}

/**
 * Decrypts a room event with the machine itself (no trust required): its cleartext JSON and who
 * sent it; throws as the machine does when the room key is missing.
 */
export async function decryptRoomEvent(
  client: E2eeClient,
  event: Record<string, unknown>,
  roomId: string,
): Promise<{ event: string; sender: string; senderDevice: string | undefined }> {
  const decrypted = await client.olmMachine.decryptRoomEvent(
    JSON.stringify(event),
    new RoomId(roomId),
    new DecryptionSettings(TrustRequirement.Untrusted),
  );
  try {
    return {
      event: decrypted.event,
      sender: decrypted.sender.toString(),
      senderDevice: decrypted.senderDevice?.toString(),
    };
  } finally {
    decrypted.free();
  }
}

/** The dehydration key cached in the client's crypto store, base64 (a secret: for the leak watch). */
export async function cachedDehydrationKey(client: E2eeClient): Promise<string | undefined> {
  const devices = client.olmMachine.dehydratedDevices();
  try {
    const cached = await devices.getDehydratedDeviceKey();
    if (cached === undefined) return undefined;
    const base64 = cached.toBase64();
    cached.free();
    return base64;
  } finally {
    devices.free();
  }
}

/**
 * The client, a real sender, shares a Megolm session with `aliceId` in each of `rooms` rooms
 * (`!room<i>:<serverName>`) and encrypts one message there, sending the key shares over a
 * transport of its own with `accessToken`. Returns the encrypted messages.
 */
export async function shareRoomKeys(
  client: E2eeClient,
  baseUrl: string,
  accessToken: string,
  aliceId: string,
  rooms: number,
  serverName: string,
) {
  const http = createMatrixHttp({ baseUrl, accessToken });
  const machine = client.olmMachine;
  await machine.updateTrackedUsers([new UserId(aliceId)]);
  await client.processOutgoingRequests();
  await claimMissingSessions(machine, http, [aliceId]);
  const senderKey = machine.identityKeys.curve25519.toBase64();
  const messages: { roomId: string; body: string; senderKey: string; event: Record<string, unknown> }[] = [];
  for (let i = 0; i < rooms; i++) {
    const roomId = `!room${i}:${serverName}`;
    const room = new RoomId(roomId);
    const shares = await machine.shareRoomKey(room, [new UserId(aliceId)], new EncryptionSettings());
    for (const request of shares) await sendOutgoingRequest(machine, http, request);
    const body = `message ${i} for Alice's eyes only`;
    const content: unknown = JSON.parse(
      await machine.encryptRoomEvent(room, "m.room.message", JSON.stringify({ msgtype: "m.text", body })),
    );
    messages.push({
      roomId,
      body,
      senderKey,
      event: {
        type: "m.room.encrypted",
        content,
        sender: client.userId,
        event_id: `$message${i}`,
        origin_server_ts: 1_700_000_000_000 + i,
        room_id: roomId,
      },
    });
  }
  return messages;
}

/** Turns the machine's room-key requests on or off (`roomKeyRequestsEnabled`). */
export function setRoomKeyRequests(client: E2eeClient, enabled: boolean): void {
  client.olmMachine.roomKeyRequestsEnabled = enabled;
}

/** Moves the worker's `ManualClock` (in-worker-setup.ts) forward, waking its sleepers in order. */
export async function advanceClock(_client: E2eeClient, ms: number): Promise<void> {
  await workerClock().advance(ms);
}

/** How many sleeps wait on the worker's `ManualClock`. */
export function pendingSleeps(_client: E2eeClient): number {
  return workerClock().pendingSleeps;
}

/**
 * Another client's rotation with a key change, as the face never does it (it makes no new key
 * while a device is up, which could no longer be drained): a new dehydration key, then a device
 * under it. Returns the device and the key now stored.
 */
export async function uploadUnderNewKey(
  client: E2eeClient,
  secretStorageKey: SecretStorageKey,
): Promise<{ deviceId: string; storedKey: string | undefined }> {
  const parts = clientInternals(client);
  await parts.manager.resetKey({ secretStorageKey });
  const { deviceId } = await parts.manager.createAndUpload({ secretStorageKey });
  const storedKey = await parts.secretStorage.get(DEHYDRATION_KEY_SECRET_NAMES.unstable, secretStorageKey);
  return { deviceId, storedKey };
}

/**
 * The client shares a room key for `roomId` with `users` through its own transport and sends only
 * those to-device messages: no room event, so no server resyncs on a room `m.room.encrypted`.
 */
export async function shareRoomKeyOnly(client: E2eeClient, roomId: string, users: string[]): Promise<void> {
  const machine = client.olmMachine;
  const http = clientInternals(client).http;
  await machine.updateTrackedUsers(users.map((u) => new UserId(u)));
  await client.processOutgoingRequests();
  await claimMissingSessions(machine, http, users);
  const settings = new EncryptionSettings();
  const requests = await machine.shareRoomKey(
    new RoomId(roomId),
    users.map((u) => new UserId(u)),
    settings,
  );
  settings.free();
  for (const request of requests) {
    await sendOutgoingRequest(machine, http, request);
    request.free();
  }
}
