/**
 * `npm run bench:rooms`: what `client.rooms.send` costs, against the crypto alone.
 *
 * A room of BENCH_MEMBERS users (default 20) with BENCH_DEVICES devices each (default 2), every
 * device a real crypto-wasm machine that published its keys; the mock homeserver in-process over
 * a real socket. Per repetition (BENCH_REPS, default 5) a new room is created and timed:
 *
 * - first send: `planRecipients` is not called, so the send tracks the members, queries their
 *   keys, claims one Olm session per device, shares the room key (one Olm message per device)
 *   and sends the event — the cost a user pays for the first message in a room;
 * - next sends: the same session, nothing to share (median of 10);
 * - limit: the crypto alone for a first message — `shareRoomKey` + `encryptRoomEvent` on a machine
 *   that already has every session — measured on the sender of the run before.
 *
 * Every run is checked: each recipient device must appear as `shared` in the applied plan.
 */
import { EncryptionSettings, RoomId, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { createE2eeClient, type E2eeClient } from "../src/client.js";
import { loadCryptoWasm } from "../src/crypto/load-wasm.js";
import { startMockServer } from "../src/testing/node-server.js";

const MEMBERS = Number(process.env.BENCH_MEMBERS ?? 20);
const DEVICES = Number(process.env.BENCH_DEVICES ?? 2);
const REPS = Number(process.env.BENCH_REPS ?? 5);
const NEXT_SENDS = 10;

await loadCryptoWasm();
const server = await startMockServer({ port: 0 });
const control = server.homeserver.control;
const clients: E2eeClient[] = [];

async function open(session: { userId: string; deviceId: string; accessToken: string }): Promise<E2eeClient> {
  const client = await createE2eeClient({ baseUrl: server.url, ...session });
  clients.push(client);
  await client.processOutgoingRequests();
  return client;
}

async function call(
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await response.json()) as Record<string, unknown>;
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

try {
  const members: { userId: string; accessToken: string }[] = [];
  for (let m = 0; m < MEMBERS; m++) {
    const user = control.createUser(`member${m}`, { password: "bench" })!;
    members.push(user);
    await open(user);
    for (let d = 1; d < DEVICES; d++) {
      const login = await call("", "POST", "/_matrix/client/v3/login", {
        type: "m.login.password",
        identifier: { type: "m.id.user", user: user.userId },
        password: "bench",
      });
      await open({
        userId: user.userId,
        deviceId: String(login.device_id),
        accessToken: String(login.access_token),
      });
    }
  }

  const first: number[] = [];
  const next: number[] = [];
  const limit: number[] = [];
  for (let rep = 0; rep < REPS; rep++) {
    const senderAccount = control.createUser(`sender${rep}`)!;
    const sender = await open(senderAccount);
    const created = await call(senderAccount.accessToken, "POST", "/_matrix/client/v3/createRoom", {
      preset: "private_chat",
      invite: members.map((m) => m.userId),
      initial_state: [
        { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
      ],
    });
    const roomId = String(created.room_id);
    for (const member of members) {
      await call(member.accessToken, "POST", `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {});
    }

    let started = performance.now();
    const sent = await sender.rooms.send(roomId, "m.room.message", { body: "first" });
    first.push(performance.now() - started);
    const shared = sent.applied.filter((a) => a.outcome === "shared").length;
    if (shared !== MEMBERS * DEVICES)
      throw new Error(`the room key reached ${shared} of ${MEMBERS * DEVICES} devices`);

    for (let i = 0; i < NEXT_SENDS; i++) {
      started = performance.now();
      await sender.rooms.send(roomId, "m.room.message", { body: `next ${i}` });
      next.push(performance.now() - started);
    }

    // The crypto alone: a new session in a room the machine has no session for, every Olm
    // session already there (they were claimed by the send above).
    const machine = sender.olmMachine;
    const fresh = new RoomId(`!limit${rep}:${server.homeserver.state.serverName}`);
    started = performance.now();
    const requests = await machine.shareRoomKey(
      fresh,
      members.map((m) => new UserId(m.userId)),
      new EncryptionSettings(),
    );
    await machine.encryptRoomEvent(fresh, "m.room.message", JSON.stringify({ body: "limit" }));
    limit.push(performance.now() - started);
    for (const r of requests) r.free();
  }

  const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
  console.log(
    `rooms.send: ${MEMBERS} members × ${DEVICES} devices, ${REPS} rooms, Node ${process.versions.node}`,
  );
  console.log(
    `  first send (query, claim ${MEMBERS * DEVICES} sessions, share, send): median ${fmt(median(first))}`,
  );
  console.log(
    `  crypto alone for a first message (shareRoomKey + encrypt):           median ${fmt(median(limit))}`,
  );
  console.log(`  first send / crypto alone: ${(median(first) / median(limit)).toFixed(1)}×`);
  console.log(`  next sends in the same session: median ${fmt(median(next))} (${next.length} sends)`);
} finally {
  for (const client of clients) await client.close();
  await server.close();
}
