/**
 * `npm run bench`: how fast a new login drains a dehydrated device (issue #6), pipelined versus
 * strictly sequential, at 0, 25 and 100 ms of added latency, against the crypto-only limit (the
 * same events fed to crypto-wasm with no network at all). One run prints the medians.
 *
 * The mock homeserver runs in a child process (its own core), so serving pages does not compete
 * with the client's crypto work on one thread. Three ways to drain: pipelined with ~1 MB pages (the
 * default), strictly sequential with the same pages, and strictly sequential with ~100-event pages
 * (Synapse's default page, which is what a client that never sends `limit` gets). Knobs:
 * BENCH_EVENTS (default 2000), BENCH_REPS (default 3), BENCH_LATENCIES (default "0,25,100").
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createInterface } from "node:readline";
import {
  DecryptionSettings,
  EncryptionSettings,
  initAsync,
  RoomId,
  TrustRequirement,
  UserId,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { z } from "zod";
import { createE2eeClient, type E2eeClient } from "../src/client.js";
import { claimMissingSessions } from "../src/crypto/claim-sessions.js";
import { sendOutgoingRequest } from "../src/crypto/send-outgoing-request.js";
import { type DrainPage, type DrainPageSource, runDrain } from "../src/dehydration/drain.js";
import { DehydratedDeviceDrainer } from "../src/dehydration/drain-dehydrated-device.js";
import { HttpDrainPageSource } from "../src/dehydration/drain-page-source.js";
import { choosePageLimit } from "../src/dehydration/pagination.js";
import { createMatrixHttp } from "../src/http/matrix-http.js";
import type { SecretStorageKey } from "../src/secret-storage/secret-storage.js";

const EVENTS = Number(process.env.BENCH_EVENTS ?? 2000);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const LATENCIES = (process.env.BENCH_LATENCIES ?? "0,25,100").split(",").map(Number);
const PASSWORD = "bench password";
type Mode = "pipelined" | "sequential" | "sequential-100";
const modes: readonly Mode[] = ["pipelined", "sequential", "sequential-100"];

const userResponse = z.looseObject({ user_id: z.string(), device_id: z.string(), access_token: z.string() });
const anyResponse = z.looseObject({});

interface Session {
  userId: string;
  deviceId: string;
  accessToken: string;
}

async function startServer(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "src/testing/cli.ts", "--port", "0", "--profile", "synapse-1.157"],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout! });
  const [url] = (await once(lines, "line")) as [string];
  return { url: url.trim(), child };
}

async function main(): Promise<void> {
  const started = performance.now();
  await initAsync();
  const { url, child } = await startServer();
  const control = createMatrixHttp({ baseUrl: url });
  const setLatency = (ms: number) =>
    control.request({
      method: "PUT",
      path: "/_mock/faults",
      body: { latency_ms: ms },
      schema: anyResponse,
      unauthenticated: true,
    });
  const createUser = async (localpart: string): Promise<Session> => {
    const r = await control.request({
      method: "POST",
      path: "/_mock/users",
      body: { localpart, password: PASSWORD },
      schema: userResponse,
      unauthenticated: true,
    });
    return { userId: r.user_id, deviceId: r.device_id, accessToken: r.access_token };
  };
  const open = (s: Session) =>
    createE2eeClient({
      baseUrl: url,
      ...s,
      uiaCallback: async () => ({ type: "m.login.dummy" }),
    });

  try {
    // Alice: cross-signing, secret storage, a dehydrated device; then she goes offline.
    const aliceSession = await createUser("alice");
    const alice = await open(aliceSession);
    const boot = await alice.bootstrapCrossSigning({ createSecretStorageKey: true });
    const recoveryKey = boot.recoveryKey!;
    await alice.dehydration.createAndUpload({ secretStorageKey: boot.secretStorageKey! });
    await alice.close();

    // Bob shares a room key with her in EVENTS rooms: EVENTS Olm pre-key messages wait on the server.
    const shareStart = performance.now();
    const bob = await open(await createUser("bob"));
    await bob.machine.updateTrackedUsers([new UserId(aliceSession.userId)]);
    await bob.processOutgoingRequests();
    await claimMissingSessions(bob.machine, bob.http, [aliceSession.userId]);
    const probe: { room: RoomId; event: string } = { room: new RoomId("!room0:localhost"), event: "" };
    for (let i = 0; i < EVENTS; i++) {
      const room = new RoomId(`!room${i}:localhost`);
      for (const request of await bob.machine.shareRoomKey(
        room,
        [new UserId(aliceSession.userId)],
        new EncryptionSettings(),
      )) {
        await sendOutgoingRequest(bob.machine, bob.http, request);
      }
      if (i === EVENTS - 1) {
        const content = JSON.parse(
          await bob.machine.encryptRoomEvent(room, "m.room.message", JSON.stringify({ body: "last" })),
        );
        probe.room = room;
        probe.event = JSON.stringify({
          type: "m.room.encrypted",
          content,
          sender: bob.userId,
          event_id: "$last",
          origin_server_ts: 1,
          room_id: room.toString(),
        });
      }
    }
    await bob.close();
    log(`setup: ${EVENTS} room keys shared in ${((performance.now() - shareStart) / 1000).toFixed(1)} s`);

    /** A fresh login that restored its keys from the recovery key, as a new browser would be. */
    const freshLogin = async (): Promise<{ client: E2eeClient; key: SecretStorageKey }> => {
      const r = await control.request({
        method: "POST",
        path: "/_matrix/client/v3/login",
        body: {
          type: "m.login.password",
          identifier: { type: "m.id.user", user: "alice" },
          password: PASSWORD,
        },
        schema: userResponse,
        unauthenticated: true,
      });
      const client = await open({ userId: r.user_id, deviceId: r.device_id, accessToken: r.access_token });
      const restored = await client.restoreFromRecoveryKey(recoveryKey);
      return { client, key: restored.secretStorageKey };
    };
    const checkDecrypts = async (client: E2eeClient) => {
      const decrypted = await client.machine.decryptRoomEvent(
        probe.event,
        probe.room,
        new DecryptionSettings(TrustRequirement.Untrusted),
      );
      if (JSON.parse(decrypted.event).content.body !== "last")
        throw new Error("the drained keys do not decrypt");
    };

    // The crypto-only limit: every page fetched beforehand, then fed to crypto-wasm exactly as the drain does.
    const cryptoOnly: number[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      const { client, key } = await freshLogin();
      const device = (await client.dehydration.rehydrate({ secretStorageKey: key }))!;
      const pages = await prefetchAll(new HttpDrainPageSource(client.http), device.deviceId);
      const result = await runDrain({
        deviceId: device.deviceId,
        source: replay(pages),
        sink: { receive: async (events) => (await device.receiveEvents(events)).length },
        clock: { now: () => performance.now(), sleep: async () => {} },
      });
      device.free();
      await checkDecrypts(client);
      await client.close();
      cryptoOnly.push(result.durationMs);
    }
    const limit = median(cryptoOnly);
    log(
      `crypto-only limit: median ${ms(limit)} for ${EVENTS} events (${Math.round((EVENTS / limit) * 1000)} events/s)`,
    );

    const rows: string[] = [];
    for (const latency of LATENCIES) {
      const times: Record<Mode, number[]> = { pipelined: [], sequential: [], "sequential-100": [] };
      let longestBlock = 0;
      for (let rep = 0; rep < REPS; rep++) {
        for (const mode of modes) {
          const { client, key } = await freshLogin();
          const drainer = new DehydratedDeviceDrainer({
            rehydrator: client.dehydration,
            http: client.http,
            userId: client.userId,
            stateStore: client.stateStore,
            cryptoStoreDurability: "memory",
            pipelined: mode === "pipelined",
            // ~100 events of ~2 KB: the page Synapse serves a client that sends no `limit`.
            targetPageBytes: mode === "sequential-100" ? 200_000 : undefined,
            clock: { now: () => performance.now(), sleep: async () => {} },
          });
          await setLatency(latency);
          const loop = monitorEventLoopDelay({ resolution: 1 });
          loop.enable();
          const result = await drainer.drain({ secretStorageKey: key });
          loop.disable();
          await setLatency(0);
          if (result.outcome !== "completed" || result.totals.events !== EVENTS) {
            throw new Error(`drain did not complete: ${JSON.stringify(result)}`);
          }
          await checkDecrypts(client);
          await client.close();
          times[mode].push(result.durationMs);
          if (mode === "pipelined") longestBlock = Math.max(longestBlock, loop.max / 1e6);
        }
      }
      const [p, s, small] = modes.map((m) => median(times[m])) as [number, number, number];
      const cell = (v: number) => `${ms(v).padStart(8)} ${ratio(v / limit)}`;
      rows.push(
        `${String(latency).padStart(4)} ms | ${cell(p)} | ${cell(s)} | ${cell(small)} | ${(s / p).toFixed(2)}× | ${longestBlock.toFixed(0)} ms`,
      );
    }
    const pageSize = choosePageLimit({ observedBytes: 0, observedEvents: 0 });
    console.log(
      `\nDrain of ${EVENTS} events (pages of ~${pageSize} events, slices of 25), median of ${REPS}; ratio = time / crypto-only limit`,
    );
    console.log(
      "latency | pipelined (×limit) | sequential (×limit) | sequential, ~100/page | pipelined vs sequential | longest block (pipelined)",
    );
    for (const row of rows) console.log(row);
    log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    child.kill("SIGTERM");
  }
}

async function prefetchAll(source: DrainPageSource, deviceId: string): Promise<Map<string, DrainPage>> {
  const pages = new Map<string, DrainPage>();
  let cursor: string | undefined;
  const signal = new AbortController().signal;
  for (;;) {
    const page = await source.fetchPage({
      deviceId,
      cursor,
      limit: choosePageLimit({ observedBytes: 0, observedEvents: 0 }),
      signal,
    });
    pages.set(cursor ?? "", page);
    if (page.nextBatch === undefined || page.events.length === 0) return pages;
    cursor = page.nextBatch;
  }
}

function replay(pages: Map<string, DrainPage>): DrainPageSource {
  return {
    async fetchPage({ cursor }) {
      const page = pages.get(cursor ?? "");
      if (!page) throw new Error(`no page at ${cursor}`);
      return page;
    },
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const ms = (v: number) => `${Math.round(v)} ms`;
const ratio = (r: number) => `(${r.toFixed(2)}×)`;
const log = (line: string) => console.log(`[bench] ${line}`);

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
