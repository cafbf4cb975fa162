import type { E2eeClient, SecretStorageKey } from "matrix-e2ee-devices";
import { openClient, passwordLogin } from "../accounts.js";
import type { DemoContext } from "../context.js";
import { watchClient } from "../observe.js";
import { decryptAll, joinInvitedRooms, type ShownMessage } from "../timeline.js";

/**
 * Step 4: Alice signs in on a new device with her password and, for the crypto, nothing but her
 * recovery key. The SDK restores her cross-signing keys from secret storage, validates the
 * dehydrated device, rehydrates it and drains its to-device events; the room keys Bob sent while
 * she was away then decrypt his messages.
 */

export interface DrainSummary {
  deviceId: string;
  outcome: "completed" | "truncated";
  events: number;
  roomKeys: number;
  pages: number;
  durationMs: number;
}

export interface NewLoginResult {
  deviceId: string;
  /** How many messages this device could read before draining (none: the keys were not sent to it). */
  readableBeforeDrain: number;
  drain: DrainSummary | undefined;
  messages: ShownMessage[];
}

const ROLE_NAMES: Record<string, string> = {
  master: "master",
  selfSigning: "self-signing",
  userSigning: "user-signing",
};

export async function newLoginWithRecoveryKey(
  ctx: DemoContext,
  recoveryKey: string,
): Promise<NewLoginResult> {
  const { log } = ctx;
  const alice = ctx.alice;
  if (alice === undefined) throw new Error("run step 1 first: Alice has no account yet");
  const session = await passwordLogin(ctx.hs, log, alice, "Alice's new browser");
  log.write("info", `Alice signs in on a new device: ${session.deviceId}`);
  const client = await openClient(ctx.hs, log, alice, session, "Alice (new)");
  watchClient(client.events, log, "Alice (new)", ctx.retries);
  try {
    const restored = await client.restoreFromRecoveryKey(recoveryKey.trim());
    const roles = restored.restored.map((role) => ROLE_NAMES[role] ?? role);
    log.write(
      "ok",
      `recovery key accepted: ${roles.join(", ") || "no"} private keys restored from secret storage; ` +
        `this device is ${restored.deviceCrossSigned ? "now cross-signed" : "NOT cross-signed"}`,
    );

    const timeline = await joinInvitedRooms(client);
    const before = (await decryptAll(client, timeline.events)).filter((m) => m.body !== undefined).length;
    log.write(
      "info",
      `joined ${timeline.rooms} rooms; before the drain this device can read ${before} of ` +
        `${timeline.events.length} messages (Bob sent the keys before it existed)`,
    );

    await validate(ctx, client);
    const drain = await drainDehydratedDevice(ctx, client, restored.secretStorageKey);
    restored.secretStorageKey.key.fill(0);

    const messages = await decryptAll(client, timeline.events);
    const readable = messages.filter((m) => m.body !== undefined).length;
    log.write(
      readable === messages.length ? "ok" : "warn",
      `after the drain: decrypted ${readable} of ${messages.length} messages`,
    );
    return { deviceId: session.deviceId, readableBeforeDrain: before, drain, messages };
  } finally {
    await client.close();
  }
}

/** The MSC3814 checks before trusting the server's device: cross-signed by Alice, id = its key. */
async function validate(ctx: DemoContext, client: E2eeClient): Promise<void> {
  const status = await client.dehydration.checkDevice();
  if (status.status === "invalid") {
    throw new Error(`the server's dehydrated device was refused: ${status.reasons.join(", ")}`);
  }
  ctx.log.write(
    status.status === "valid" ? "ok" : "warn",
    status.status === "valid"
      ? `dehydrated device ${status.deviceId} validated: cross-signed by Alice, id = its Curve25519 key`
      : "the server has no dehydrated device for Alice",
  );
}

async function drainDehydratedDevice(
  ctx: DemoContext,
  client: E2eeClient,
  secretStorageKey: SecretStorageKey,
): Promise<DrainSummary | undefined> {
  const { log } = ctx;
  const drainer = client.dehydrationDrainer;
  const listeners = [
    drainer.events.on("rehydrated", (e) =>
      log.write("ok", `rehydrated ${e.deviceId} with the dehydration key`),
    ),
    drainer.events.on("page", (p) =>
      log.write(
        "info",
        `page ${p.page}: ${p.events} events → ${p.roomKeys} room keys imported` +
          (p.next === "more" ? ", more to come" : ", the last one"),
      ),
    ),
  ];
  let outcome: Awaited<ReturnType<typeof drainer.drain>>;
  try {
    outcome = await drainer.drain({ secretStorageKey });
  } finally {
    for (const stopListening of listeners) stopListening();
  }
  if (outcome.outcome === "no_device") return undefined;
  const summary: DrainSummary = {
    deviceId: outcome.deviceId,
    outcome: outcome.outcome,
    events: outcome.run.events,
    roomKeys: outcome.run.roomKeys,
    pages: outcome.run.pages,
    durationMs: Math.round(outcome.durationMs),
  };
  log.write(
    outcome.outcome === "completed" ? "ok" : "warn",
    `drain ${outcome.outcome}: ${summary.events} events, ${summary.roomKeys} room keys, ` +
      `${summary.pages} ${summary.pages === 1 ? "page" : "pages"} in ${summary.durationMs} ms`,
  );
  return summary;
}
