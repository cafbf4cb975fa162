import { createE2eeClient } from "../../../src/index.js";
import { createE2eeWorkerClient } from "../../../src/worker/browser.js";
import { exposeScenarios } from "./scenario-protocol.js";

/**
 * The worker client's reason to exist: a new login drains a dehydrated device holding thousands
 * of room keys, and the page's thread stays free. A `longtask` PerformanceObserver and a
 * `requestAnimationFrame` loop watch the page's thread during the drain; the same drain with the
 * in-thread client (`createE2eeClient` on the page) is measured the same way, for comparison.
 * The login's token and Alice's recovery key stay in the page; only counts come back.
 */

export interface DrainSession {
  baseUrl: string;
  userId: string;
  deviceId: string;
  accessToken: string;
}

/** An encrypted room message Bob sent, to decrypt once the drain imported its key. */
export interface ProbeMessage {
  body: string;
  event: Record<string, unknown>;
}

/** What the page's thread went through while `run` ran. */
export interface ThreadWatch {
  /** `longtask` entries (each a task over 50 ms on this thread) that started during the run. */
  longTasks: number;
  longestTaskMs: number;
  /** Animation frames seen during the run, and the longest gap between two of them. */
  frames: number;
  longestFrameGapMs: number;
  durationMs: number;
}

export interface DrainMeasurement {
  where: "worker" | "page";
  outcome: string;
  totals: { pages: number; events: number; roomKeys: number } | undefined;
  /** `roomId|sessionId` of every room key the drain imported, sorted. */
  importedSessions: string[];
  /** How many probe messages decrypted to the body Bob sent. */
  probesDecrypted: number;
  watch: ThreadWatch;
}

const dummyAuth = async () => ({ type: "m.login.dummy" });
const paint = () => document.getElementById("spinner");

/** Runs `run` with a long-task observer and a rAF loop on this thread, from the first frame on. */
async function watchThread<T>(run: () => Promise<T>): Promise<{ value: T; watch: ThreadWatch }> {
  const tasks: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => tasks.push(...list.getEntries()));
  observer.observe({ type: "longtask" });
  let frames = 0;
  let longestFrameGapMs = 0;
  let lastFrame: number | undefined;
  let looping = true;
  const frame = (now: number) => {
    if (!looping) return;
    if (lastFrame !== undefined) {
      frames += 1;
      longestFrameGapMs = Math.max(longestFrameGapMs, now - lastFrame);
    }
    lastFrame = now;
    // Work a UI does each frame: a style change that needs a paint.
    const box = paint();
    if (box !== null) box.style.transform = `rotate(${(now / 10) % 360}deg)`;
    requestAnimationFrame(frame);
  };
  // Start on a frame boundary, so the first gap measured is the run's and not the page's load.
  await new Promise<void>((resolve) =>
    requestAnimationFrame((now) => {
      lastFrame = now;
      resolve();
      requestAnimationFrame(frame);
    }),
  );
  const started = performance.now();
  let value: T;
  let ended: number;
  try {
    value = await run();
  } finally {
    ended = performance.now();
    // A frame after the end closes the last gap; the observer's last entries are queued by then.
    await new Promise<void>((resolve) => requestAnimationFrame(() => resolve()));
    await new Promise<void>((resolve) => setTimeout(resolve, 100));
    looping = false;
    tasks.push(...observer.takeRecords());
    observer.disconnect();
  }
  const during = tasks.filter((t) => t.startTime + t.duration >= started && t.startTime <= ended);
  return {
    value,
    watch: {
      longTasks: during.length,
      longestTaskMs: Math.max(0, ...during.map((t) => t.duration)),
      frames,
      longestFrameGapMs,
      durationMs: ended - started,
    },
  };
}

type DrainResult = Awaited<ReturnType<Awaited<ReturnType<typeof createE2eeClient>>["dehydration"]["drain"]>>;

function measurement(
  where: DrainMeasurement["where"],
  result: DrainResult,
  probesDecrypted: number,
  watch: ThreadWatch,
): DrainMeasurement {
  return {
    where,
    outcome: result.outcome,
    totals: result.outcome === "no_device" ? undefined : { ...result.totals },
    importedSessions:
      result.outcome === "no_device"
        ? []
        : result.importedKeys.map((k) => `${k.roomId}|${k.sessionId}`).sort(),
    probesDecrypted,
    watch,
  };
}

/** The common part of both clients this page uses. */
interface DrainingClient {
  crossSigning: { restoreFromRecoveryKey(key: string): Promise<{ secretStorageKey: unknown }> };
  dehydration: { drain(options: { secretStorageKey: never }): Promise<DrainResult> };
  rooms: { decrypt(event: unknown): Promise<{ ok: boolean; event?: { content: Record<string, unknown> } }> };
  close(): Promise<void>;
}

async function restoreDrainDecrypt(
  where: DrainMeasurement["where"],
  client: DrainingClient,
  recoveryKey: string,
  probes: readonly ProbeMessage[],
): Promise<DrainMeasurement> {
  try {
    const { secretStorageKey } = await client.crossSigning.restoreFromRecoveryKey(recoveryKey);
    const { value, watch } = await watchThread(() =>
      client.dehydration.drain({ secretStorageKey: secretStorageKey as never }),
    );
    let decrypted = 0;
    for (const probe of probes) {
      const result = await client.rooms.decrypt(probe.event);
      if (result.ok && result.event?.content.body === probe.body) decrypted++;
    }
    return measurement(where, value, decrypted, watch);
  } finally {
    await client.close();
  }
}

const scenarios = {
  /** A new login of Alice with the client in a worker: restore, drain everything, decrypt probes. */
  async drainInWorker(session: DrainSession, recoveryKey: string, probes: ProbeMessage[]) {
    const client = await createE2eeWorkerClient({ ...session, uiaCallback: dummyAuth });
    return restoreDrainDecrypt("worker", client as unknown as DrainingClient, recoveryKey, probes);
  },

  /** The same with the client on the page's own thread (default slice budget, 40 ms). */
  async drainInPage(session: DrainSession, recoveryKey: string, probes: ProbeMessage[]) {
    const client = await createE2eeClient({ ...session, uiaCallback: dummyAuth });
    return restoreDrainDecrypt("page", client as unknown as DrainingClient, recoveryKey, probes);
  },

  /** The long-task observer works here: a 120 ms busy loop on this thread shows up as one. */
  async longTaskProbe() {
    const { watch } = await watchThread(async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      const until = performance.now() + 120;
      while (performance.now() < until) {
        // busy: one long task
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    });
    return watch;
  },
};

export type WorkerDrainScenarios = typeof scenarios;
exposeScenarios(scenarios);
