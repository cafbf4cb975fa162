import type { DrainPageReport, E2eeClient, SecretStorageKey } from "matrix-e2ee-devices";
import { matrixCalls, openClient, passwordLogin, type Session } from "../accounts.js";
import type { DemoContext } from "../context.js";
import { DemoError } from "../demo-error.js";
import { describeError } from "../log-panel.js";
import { watchClient } from "../observe.js";
import {
  type AliceRoom,
  decryptAll,
  discoverRooms,
  joinAndRead,
  ROOM_CONCURRENCY,
  type ShownMessage,
} from "../timeline.js";

/**
 * Step 4: Alice signs in on a new device with her password and, for the crypto, nothing but her
 * recovery key. The SDK restores her cross-signing keys from secret storage, validates the
 * dehydrated device, rehydrates it and drains its to-device messages; the room keys Bob sent while
 * she was away then decrypt his messages.
 *
 * Everything this step achieves is kept in `ctx.newLogin` until it succeeds: a failed attempt
 * clicked again resumes on the same login (device, crypto store, drain checkpoint) and the same
 * rooms, and re-does only what did not complete.
 */

/** Where step 4 spends its time; the card shows the sum over all attempts. */
export type Phase = "signIn" | "rooms" | "check" | "drain" | "decrypt";

export const PHASE_LABELS: Record<Phase, string> = {
  signIn: "signing in",
  rooms: "joining rooms",
  check: "checking the device",
  drain: "drain",
  decrypt: "decrypting",
};

export interface DrainSummary {
  deviceId: string;
  outcome: "completed" | "truncated";
  /** To-device messages read from the dehydrated device's inbox (resumed runs included). */
  toDeviceMessages: number;
  /** Room keys they carried, imported into this login's crypto store. */
  roomKeys: number;
  pages: number;
  resumed: boolean;
}

/** What the card shows while step 4 runs. */
export interface NewLoginView {
  /** The live line: which phase, how far. */
  phase(phase: Phase, text: string): void;
  /** Where the time went so far, over every attempt. */
  timings(spentMs: Record<Phase, number>, attempts: number): void;
  deviceId(deviceId: string, attempt: number): void;
  /** Each stored page, with the totals so far. */
  drainPage(report: DrainPageReport): void;
  /** The drain failed; its checkpoint is kept for the next attempt. */
  drainStopped(): void;
  /** Results so far, also of an attempt that then fails its verdict. */
  result(result: NewLoginResult): void;
}

export interface NewLoginResult {
  deviceId: string;
  attempts: number;
  rooms: number;
  /** Messages Bob sent (step 3). */
  messagesSent: number;
  /** To-device messages that waited in the dehydrated device's inbox after Bob's latest send. */
  waitingToDevice: number | undefined;
  /** How many messages this device could read before draining (none: the keys were not sent to it). */
  readableBeforeDrain: number;
  drain: DrainSummary | undefined;
  /** Room-key requests sent to other devices, for keys still missing after a complete drain. */
  keyRequests: number;
  messages: ShownMessage[];
  spentMs: Record<Phase, number>;
}

/** Step 4's state across attempts. */
export interface NewLoginProgress {
  attempts: number;
  session?: Session;
  client?: E2eeClient;
  stopListening?: () => void;
  /** Cross-signing is restored; the unlocked key is kept until the drain completed. */
  restored?: true;
  secretStorageKey?: SecretStorageKey;
  rooms: Map<string, AliceRoom>;
  readableBeforeDrain?: number;
  deviceChecked?: boolean;
  drain?: DrainSummary;
  /** The Megolm sessions this login asked other devices for. */
  keyRequests: Set<string>;
  spentMs: Record<Phase, number>;
  view: NewLoginView;
}

const ROLE_NAMES: Record<string, string> = {
  master: "master",
  selfSigning: "self-signing",
  userSigning: "user-signing",
};

export async function newLoginWithRecoveryKey(
  ctx: DemoContext,
  recoveryKey: string,
  view: NewLoginView,
): Promise<NewLoginResult> {
  const { log } = ctx;
  const alice = ctx.alice;
  if (alice === undefined) throw new DemoError("out_of_order", "run step 1 first: Alice has no account yet");
  const progress: NewLoginProgress = ctx.newLogin ?? {
    attempts: 0,
    rooms: new Map(),
    keyRequests: new Set(),
    spentMs: { signIn: 0, rooms: 0, check: 0, drain: 0, decrypt: 0 },
    view,
  };
  ctx.newLogin = progress;
  progress.view = view;
  progress.attempts++;
  const timed = async <T>(phase: Phase, work: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    view.phase(phase, `${PHASE_LABELS[phase]}…`);
    try {
      return await work();
    } finally {
      progress.spentMs[phase] += performance.now() - started;
      view.timings(progress.spentMs, progress.attempts);
    }
  };

  const { client, session } = await timed("signIn", async () => {
    if (progress.session === undefined) {
      // Login is not repeatable (each one makes a device): done once, then kept.
      progress.session = await passwordLogin(ctx, alice, "Alice's new browser");
      log.write("info", `Alice signs in on a new device: ${progress.session.deviceId}`);
    } else {
      log.write(
        "info",
        `attempt ${progress.attempts}: resuming on the same device ${progress.session.deviceId} ` +
          "(its login, crypto store, rooms and drain checkpoint are kept)",
      );
    }
    view.deviceId(progress.session.deviceId, progress.attempts);
    progress.client ??= await openNewLogin(ctx, progress, progress.session);
    if (progress.restored === undefined) {
      const restored = await progress.client.crossSigning.restoreFromRecoveryKey(recoveryKey.trim());
      progress.restored = true;
      progress.secretStorageKey = restored.secretStorageKey;
      const roles = restored.restored.map((role) => ROLE_NAMES[role] ?? role);
      log.write(
        "ok",
        `recovery key accepted: ${roles.join(", ") || "no"} private keys restored from secret storage; ` +
          `this device is ${restored.deviceCrossSigned ? "now cross-signed" : "NOT cross-signed"}`,
      );
    }
    return { client: progress.client, session: progress.session };
  });

  const calls = matrixCalls(ctx, "Alice (new)", session);
  await timed("rooms", async () => {
    // Listed again on every attempt (one request): a room the last listing missed is picked up.
    await discoverRooms(calls, progress.rooms);
    const before = [...progress.rooms.values()].filter((r) => r.history !== undefined).length;
    const joins = await joinAndRead(calls, progress.rooms, (done, total) =>
      view.phase("rooms", `joining rooms: ${done} of ${total} read (${ROOM_CONCURRENCY} at a time)`),
    );
    const events = [...progress.rooms.values()].reduce((n, r) => n + (r.history?.length ?? 0), 0);
    log.write(
      "info",
      `in ${progress.rooms.size} rooms: joined ${joins} now, ${ROOM_CONCURRENCY} at a time` +
        (before > 0 ? ` (${before} were done on an earlier attempt)` : "") +
        `; ${events} encrypted messages`,
    );
  });

  if (progress.readableBeforeDrain === undefined && progress.drain === undefined) {
    const before = await timed("decrypt", () => decryptAll(client.olmMachine, progress.rooms.values()));
    progress.readableBeforeDrain = before.filter((m) => m.body !== undefined).length;
    log.write(
      "info",
      `before the drain this device can read ${progress.readableBeforeDrain} of ${before.length} messages ` +
        "(Bob sent the keys before it existed); it asks no other device for them",
    );
  }

  if (!progress.deviceChecked) {
    await timed("check", () => validate(ctx, client));
    progress.deviceChecked = true;
  }

  if (progress.drain?.outcome !== "completed") {
    progress.drain = await timed("drain", () =>
      drainDehydratedDevice(ctx, client, progress.secretStorageKey),
    );
    if (progress.drain === undefined || progress.drain.outcome === "completed") {
      // Nothing more to read with it: the drain was the key's last use here.
      progress.secretStorageKey?.key.fill(0);
      progress.secretStorageKey = undefined;
    }
  }

  const messages = await timed("decrypt", async () => {
    let shown = await decryptAll(client.olmMachine, progress.rooms.values());
    const missing = new Set(shown.flatMap((m) => (m.body === undefined && m.sessionId ? [m.sessionId] : [])));
    if (missing.size > 0 && progress.drain?.outcome === "completed") {
      // Only now, and only for what the drain did not bring: the machine queues one request per
      // missing session when decryption fails with requests enabled.
      client.olmMachine.roomKeyRequestsEnabled = true;
      shown = await decryptAll(client.olmMachine, progress.rooms.values());
      await client.processOutgoingRequests();
      for (const sessionId of missing) progress.keyRequests.add(sessionId);
      log.write("warn", `asked Alice's other devices for the ${missing.size} room keys still missing`);
    }
    return shown;
  });

  const readable = messages.filter((m) => m.body !== undefined).length;
  const result: NewLoginResult = {
    deviceId: session.deviceId,
    attempts: progress.attempts,
    rooms: progress.rooms.size,
    messagesSent: ctx.bob?.messagesSent ?? 0,
    waitingToDevice: ctx.waitingToDevice,
    readableBeforeDrain: progress.readableBeforeDrain ?? 0,
    drain: progress.drain,
    keyRequests: progress.keyRequests.size,
    messages,
    spentMs: { ...progress.spentMs },
  };
  view.result(result);
  log.write(
    readable === messages.length && readable > 0 ? "ok" : "warn",
    `after the drain: decrypted ${readable} of ${messages.length} messages`,
  );
  verdict(result, readable);

  // Done: the next click is another new login.
  progress.stopListening?.();
  await client.close();
  ctx.newLogin = undefined;
  return result;
}

/** Success means every message Bob sent is found and decrypted; nothing else is shown as success. */
function verdict(result: NewLoginResult, readable: number): void {
  const found = result.messages.length;
  if (found === 0) {
    throw new DemoError(
      "nothing_decrypted",
      result.messagesSent > 0
        ? `Alice's new device found none of the ${result.messagesSent} messages Bob sent`
        : "there are no messages to decrypt",
    );
  }
  if (found < result.messagesSent) {
    throw new DemoError("messages_missing", `found ${found} of the ${result.messagesSent} messages Bob sent`);
  }
  if (readable < found) {
    throw new DemoError("not_decrypted", `decrypted ${readable} of ${found} messages`);
  }
}

/** The new login's client, with its events wired to the log and the card. */
async function openNewLogin(
  ctx: DemoContext,
  progress: NewLoginProgress,
  session: Session,
): Promise<E2eeClient> {
  const client = await openClient(ctx, ctx.alice!, session, "Alice (new)");
  // A device that knows it is about to drain asks nobody for keys before: the drain brings them,
  // and every request would also land in the dehydrated device's inbox (to-device, to all of
  // Alice's devices). Re-enabled only for keys still missing after a complete drain.
  client.olmMachine.roomKeyRequestsEnabled = false;
  const { log } = ctx;
  const stops = [
    watchClient(client.events, log, "Alice (new)", ctx.retries),
    client.events.on("dehydration.drain.found", (e) =>
      log.write(
        "info",
        `dehydrated device ${e.deviceId} found` +
          (e.resumeFrom === undefined ? "" : "; resuming the drain after the last stored page"),
      ),
    ),
    client.events.on("dehydration.drain.rehydrated", (e) =>
      log.write("ok", `rehydrated ${e.deviceId} with the dehydration key`),
    ),
    client.events.on("dehydration.drain.page", (p) => {
      progress.view.drainPage(p);
      log.write(
        "info",
        `page ${p.page}: ${p.events} to-device messages → ${p.roomKeys} room keys imported` +
          (p.next === "more" ? ", more to come" : ", the last one"),
      );
    }),
    client.events.on("dehydration.drain.error", (e) => {
      progress.view.drainStopped();
      log.write("warn", `the drain stopped: ${describeError(e.error)}; its checkpoint is kept`);
    }),
  ];
  progress.stopListening = () => {
    for (const stop of stops) stop();
  };
  return client;
}

/** The MSC3814 checks before trusting the server's device: cross-signed by Alice, id = its key. */
async function validate(ctx: DemoContext, client: E2eeClient): Promise<void> {
  const { device } = await client.dehydration.status();
  if (device.status === "invalid") {
    throw new DemoError(
      "dehydrated_device_refused",
      `the server's dehydrated device was refused: ${device.reasons.join(", ")}`,
    );
  }
  ctx.log.write(
    device.status === "valid" ? "ok" : "warn",
    device.status === "valid"
      ? `dehydrated device ${device.deviceId} validated: cross-signed by Alice, id = its Curve25519 key`
      : "the server has no dehydrated device for Alice",
  );
}

async function drainDehydratedDevice(
  ctx: DemoContext,
  client: E2eeClient,
  secretStorageKey: SecretStorageKey | undefined,
): Promise<DrainSummary | undefined> {
  const outcome = await client.dehydration.drain(secretStorageKey ? { secretStorageKey } : {});
  if (outcome.outcome === "no_device") return undefined;
  const summary: DrainSummary = {
    deviceId: outcome.deviceId,
    outcome: outcome.outcome,
    toDeviceMessages: outcome.totals.events,
    roomKeys: outcome.totals.roomKeys,
    pages: outcome.totals.pages,
    resumed: outcome.resumedFrom !== undefined,
  };
  ctx.log.write(
    outcome.outcome === "completed" ? "ok" : "warn",
    `drain ${outcome.outcome}: ${summary.toDeviceMessages} to-device messages, ${summary.roomKeys} room keys, ` +
      `${summary.pages} ${summary.pages === 1 ? "page" : "pages"} in ${Math.round(outcome.durationMs)} ms`,
  );
  return summary;
}
