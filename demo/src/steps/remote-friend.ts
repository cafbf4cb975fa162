import type {
  DeviceFacts,
  DeviceListTrust,
  DisplayedDevice,
  E2eeClient,
  RoomSendResult,
} from "matrix-e2ee-devices";
import type { RemoteDeviceListCache } from "matrix-e2ee-devices/testing";
import {
  type Account,
  matrixCalls,
  openClient,
  passwordLogin,
  randomPassword,
  type Session,
} from "../accounts.js";
import type { BobProgress, BobRoom, DemoContext } from "../context.js";
import { DemoError } from "../demo-error.js";
import { describeError } from "../log-panel.js";
import { watchClient } from "../observe.js";
import { createEncryptedRoom, joinRoom, ROOM_ENCRYPTION, ROOM_HISTORY_VISIBILITY } from "../rooms.js";
import { bobOnline, bobSyncsOnce } from "./bob-sends.js";

/**
 * Card 5: a friend on another server, whose new device Bob's list misses. Dave's account is on
 * `remote.example`, a second server the embedded mock plays (simulated federation). Bob's server
 * keeps a copy of Dave's device list and answers Bob's `keys/query` from it, as Synapse does for
 * remote users. When the update for Dave's new device is lost (`control.loseDeviceListUpdates`),
 * that copy goes stale, and so does Bob's client's list: Bob's messages would skip the new device.
 *
 * Bob's client shows how current it thinks Dave's list is (`client.deviceLists.trust`, live with
 * `deviceLists.trustChanged`). The app reports what Dave says (`deviceLists.report`); the SDK then
 * resyncs — by MSC2638 where the server offers it (it refreshes its copy: "server and client"), by
 * a re-query elsewhere ("client only": a server answering from a stale copy answers the same).
 * `rooms.send` asks for fresh lists first; the card proves from the server's side
 * (`control.toDeviceInbox`) whether the new device got the room key.
 */

/** The other server the embedded mock plays; Dave's homeserver. */
export const REMOTE_SERVER = "remote.example";
export const DAVE_USER_ID = `@dave:${REMOTE_SERVER}`;

/** What Bob's app tells his client when Dave says so. */
export const NEW_PHONE_NOTE = "Dave says he has a new phone";

/** How often Bob's app syncs while his client waits for a list to arrive. */
const SYNC_EVERY_MS = 100;

const MESSAGES: readonly string[] = [
  "Hi Dave, welcome to the room!",
  "Can you read this on your new phone?",
  "Still there, Dave?",
];

export interface DaveDevice {
  session: Session;
  /** Shown by the demo only: Bob's client sees no name of another server's devices. */
  name: string;
  role: "first" | "new";
  client?: E2eeClient;
  /** Its keys are on Dave's server (`keys/upload`). */
  keysUp?: boolean;
}

export interface DaveProgress {
  account: Account;
  first: DaveDevice;
  /** Logged in once Dave "adds a new device"; its list update never reaches Bob's server. */
  second?: DaveDevice;
  /** Bob's room with Dave, once created: createRoom is not repeatable. */
  room?: BobRoom;
  joined: boolean;
  /** Bob's messages to Dave so far. */
  sent: number;
  /** A message whose send failed: a retry sends it with the same transaction id. */
  pending?: { body: string; txnId: string };
  /** Whether the server holds a room key from Bob for the new device (after Bob's latest send). */
  newDeviceHasKey?: boolean;
  /** Stops forwarding Bob's client's `deviceLists.trustChanged` for Dave to the card. */
  stopWatching?: () => void;
}

/** What card 5 shows. */
export interface RemoteFriendView {
  /** Bob's client's trust in Dave's list, as it changes. */
  trust(trust: DeviceListTrust): void;
  /** Dave's devices as Bob's client lists them, beside the ones Dave really has. */
  devices(listed: readonly DisplayedDevice<DeviceFacts>[], real: readonly DaveDevice[]): void;
  /** One send's plan and what the crypto layer did. */
  sent(result: RoomSendResult): void;
  /** Per device of Dave's: `m.room.encrypted` to-device messages from Bob in its inbox on the server. */
  inboxes(fromBob: ReadonlyMap<string, number>): void;
  /** What Bob's server holds of Dave's list, beside Dave's true list. */
  serverCopy(cache: RemoteDeviceListCache): void;
}

/**
 * Dave (remote) joins an encrypted room Bob makes, and Bob writes to him: Dave's first device gets
 * the room key. Independent of steps 1–4; Bob is the same Bob as in step 3 when he exists.
 */
export async function daveJoinsAndBobWrites(ctx: DemoContext, view: RemoteFriendView): Promise<void> {
  const { hs, log } = ctx;
  if (hs.control.addRemoteServer(REMOTE_SERVER)) {
    log.write(
      "info",
      `server: now also plays ${REMOTE_SERVER}, Dave's homeserver (simulated federation). Bob's server ` +
        `(${hs.serverName}) keeps a copy of Dave's device list once they share a room, and ` +
        "answers Bob's keys/query from it",
    );
  }
  ctx.dave ??= createDave(ctx);
  const dave = ctx.dave;
  await deviceOnline(ctx, dave, dave.first);
  const bobProgress = await bobOnline(ctx);
  const bob = bobProgress.client!;
  watchTrust(ctx, dave, bob, view);

  const bobCalls = matrixCalls(ctx, "Bob", bobProgress.session);
  if (dave.room === undefined) {
    const name = "Bob & Dave";
    dave.room = { roomId: await createEncryptedRoom(bobCalls, name, dave.account.userId), name, index: -1 };
    log.write("info", `Bob created the encrypted room "${name}" and invited ${dave.account.userId}`);
  }
  const room = dave.room;
  if (!dave.joined) {
    await joinRoom(matrixCalls(ctx, "Dave", dave.first.session), room.roomId);
    dave.joined = true;
    log.write(
      "info",
      `Dave joined "${room.name}" from ${REMOTE_SERVER}: Bob's server now shares a room with him, so it ` +
        "keeps a copy of his device list",
    );
  }
  await bob.rooms.updateRoom(room.roomId, {
    encryption: ROOM_ENCRYPTION,
    historyVisibility: ROOM_HISTORY_VISIBILITY,
    members: { [bobProgress.session.userId]: "join", [dave.account.userId]: "join" },
  });
  if (dave.sent === 0) await bobWrites(ctx, dave, bobProgress, view);
  else await show(ctx, dave, bob, view);
}

/**
 * Dave logs in on a new phone, which uploads its keys to his server — while the server loses his
 * device-list updates, so Bob's server's copy, and Bob's client, never hear of it.
 */
export async function daveAddsDeviceUpdateLost(ctx: DemoContext, view: RemoteFriendView): Promise<void> {
  const { dave, bobProgress, bob } = started(ctx);
  const { hs, log } = ctx;
  if (dave.second === undefined) {
    hs.control.loseDeviceListUpdates(dave.account.userId, true);
    log.write(
      "warn",
      `server: updates of Dave's device list no longer reach Bob's server (control.loseDeviceListUpdates): ` +
        "its copy goes stale, and stays so until a resync — for years, on a real server",
    );
    const session = await passwordLogin(ctx, dave.account, "Dave's new phone");
    dave.second = { session, name: "Dave's new phone", role: "new" };
  }
  await deviceOnline(ctx, dave, dave.second);
  log.write(
    "info",
    `Dave's new phone ${dave.second.session.deviceId} logged in on ${REMOTE_SERVER} and uploaded its keys; ` +
      "the update was lost on its way to Bob's server",
  );
  // Bob's app syncs as it would: nothing tells it of the new device.
  await bobSyncsOnce(ctx, bobProgress);
  await show(ctx, dave, bob, view);
  const listed = await bob.rooms.devices(dave.account.userId);
  log.write(
    listed.some((d) => d.deviceId === dave.second?.session.deviceId) ? "ok" : "warn",
    `Bob's client lists ${listed.length} ${listed.length === 1 ? "device" : "devices"} of Dave's ` +
      `[${listed.map((d) => d.deviceId).join(", ")}]; Dave has 2`,
  );
}

/**
 * Bob's app passes on what Dave told Bob (`deviceLists.report`): the list is marked stale and
 * resynced. Bob's app keeps syncing meanwhile — an MSC2638 refresh arrives through
 * `device_lists.changed` — until the resync is over (`requestResync` joins the one in flight).
 */
export async function daveSaysNewPhone(ctx: DemoContext, view: RemoteFriendView): Promise<void> {
  const { dave, bobProgress, bob } = started(ctx);
  const userId = dave.account.userId;
  const now = bob.deviceLists.report(userId, NEW_PHONE_NOTE);
  ctx.log.write(
    "info",
    `Bob's app: deviceLists.report(Dave, "${NEW_PHONE_NOTE}") → ${now.state}; his client resyncs in the background`,
  );
  const [after] = await syncWhile(ctx, bobProgress, bob.deviceLists.requestResync([userId]));
  if (after !== undefined && (after.state === "stale" || after.state === "refreshing")) {
    ctx.log.write(
      "info",
      "Bob's client resynced Dave's list less than 10 s ago (minResyncIntervalMs): it resyncs again once that " +
        "window is over",
    );
  }
  await show(ctx, dave, bob, view);
}

/** Bob writes to Dave (`rooms.send` asks for fresh lists first); the card shows who got the key. */
export async function bobWritesToDave(ctx: DemoContext, view: RemoteFriendView): Promise<void> {
  const { dave, bobProgress } = started(ctx);
  await bobWrites(ctx, dave, bobProgress, view);
}

/** Closes Dave's clients (Bob's are closed with the rest). */
export function closeDave(dave: DaveProgress | undefined): void {
  dave?.stopWatching?.();
  for (const device of [dave?.first, dave?.second]) void device?.client?.close().catch(() => {});
}

function createDave(ctx: DemoContext): DaveProgress {
  const password = randomPassword();
  // Dave registers on his own server, which this page plays too; the mock's control API stands in
  // for that server's registration page.
  const created = ctx.hs.control.createUser("dave", {
    password,
    server: REMOTE_SERVER,
    displayName: "Dave's laptop",
  });
  if (created === undefined || created.userId !== DAVE_USER_ID)
    throw new DemoError("dave_exists", `${DAVE_USER_ID} exists already`);
  ctx.log.write(
    "info",
    `Dave has an account on ${REMOTE_SERVER}: ${created.userId} (device ${created.deviceId})`,
  );
  const { userId, deviceId, accessToken } = created;
  return {
    account: { userId, localpart: userId, password },
    first: { session: { userId, deviceId, accessToken }, name: "Dave's laptop", role: "first" },
    joined: false,
    sent: 0,
  };
}

/** Opens a client for one of Dave's devices and uploads its keys (once). */
async function deviceOnline(ctx: DemoContext, dave: DaveProgress, device: DaveDevice): Promise<E2eeClient> {
  const actor = device.role === "first" ? "Dave" : "Dave (new phone)";
  if (device.client === undefined) {
    device.client = await openClient(ctx, dave.account, device.session, actor);
    watchClient(device.client.events, ctx.log, actor, ctx.retries);
  }
  if (!device.keysUp) {
    await device.client.processOutgoingRequests();
    device.keysUp = true;
  }
  return device.client;
}

function started(ctx: DemoContext): { dave: DaveProgress; bobProgress: BobProgress; bob: E2eeClient } {
  const dave = ctx.dave;
  const bobProgress = ctx.bob;
  if (dave?.room === undefined || dave.sent === 0 || bobProgress?.client === undefined)
    throw new DemoError("out_of_order", "first let Dave join Bob's room and Bob write to him");
  return { dave, bobProgress, bob: bobProgress.client };
}

/** Bob's client's `deviceLists.trustChanged` for Dave, on the card and in the log. */
function watchTrust(ctx: DemoContext, dave: DaveProgress, bob: E2eeClient, view: RemoteFriendView): void {
  if (dave.stopWatching !== undefined) return;
  dave.stopWatching = bob.events.on("deviceLists.trustChanged", ({ userId, trust }) => {
    if (userId !== dave.account.userId) return;
    view.trust(trust);
    ctx.log.write(
      trust.state === "failed" ? "warn" : trust.state === "fresh" ? "ok" : "info",
      `Bob's client · deviceLists.trustChanged: Dave's list is ${trustLine(trust)}`,
    );
  });
  view.trust(bob.deviceLists.trust(dave.account.userId));
}

async function bobWrites(
  ctx: DemoContext,
  dave: DaveProgress,
  bobProgress: BobProgress,
  view: RemoteFriendView,
): Promise<void> {
  const bob = bobProgress.client!;
  const room = dave.room!;
  dave.pending ??= { body: MESSAGES[dave.sent % MESSAGES.length]!, txnId: `demo-dave-${dave.sent}` };
  const { body, txnId } = dave.pending;
  // The send first asks for fresh lists (`ensureFresh`); an MSC2638 refresh arrives through sync.
  const result = await syncWhile(
    ctx,
    bobProgress,
    bob.rooms.send(room.roomId, "m.room.message", { msgtype: "m.text", body }, { txnId }),
  );
  dave.pending = undefined;
  dave.sent++;
  view.sent(result);
  const mine = result.applied.filter((a) => a.userId === dave.account.userId);
  const shared = mine.filter((a) => a.outcome === "shared").map((a) => a.deviceId);
  const unchanged = mine.filter((a) => a.outcome === "unchanged").map((a) => a.deviceId);
  const withheld = mine.filter((a) => a.outcome === "withheld").map((a) => `${a.deviceId}: ${a.code}`);
  ctx.log.write(
    "ok",
    `"${room.name}": Bob's message sent; over the room's session so far, its key went to ${shared.length} of ` +
      `Dave's devices [${shared.join(", ")}]` +
      (unchanged.length > 0 ? `; ${unchanged.length} had it already [${unchanged.join(", ")}]` : "") +
      (withheld.length > 0 ? `; withheld from ${withheld.length} [${withheld.join(", ")}]` : ""),
  );
  const inboxes = await show(ctx, dave, bob, view);
  const second = dave.second;
  if (second !== undefined) {
    const got = inboxes.get(second.session.deviceId) ?? 0;
    dave.newDeviceHasKey = got > 0;
    ctx.log.write(
      got > 0 ? "ok" : "warn",
      `server side: Dave's new phone ${second.session.deviceId} holds ${got} m.room.encrypted from Bob in its inbox` +
        (got > 0 ? "" : ": it did not get the room key"),
    );
  }
}

/** Refreshes the card from Bob's client and from the server; returns the inbox counts. */
async function show(
  ctx: DemoContext,
  dave: DaveProgress,
  bob: E2eeClient,
  view: RemoteFriendView,
): Promise<Map<string, number>> {
  const userId = dave.account.userId;
  const real = [dave.first, ...(dave.second ? [dave.second] : [])];
  view.devices(await bob.rooms.devices(userId), real);
  view.trust(bob.deviceLists.trust(userId));
  view.serverCopy(ctx.hs.control.remoteCache(userId));
  const inboxes = new Map(
    real.map((d) => [
      d.session.deviceId,
      ctx.hs.control
        .toDeviceInbox(userId, d.session.deviceId)
        .events.filter((e) => e.type === "m.room.encrypted" && e.sender === bob.userId).length,
    ]),
  );
  view.inboxes(inboxes);
  return inboxes;
}

/**
 * `work`, while Bob's app keeps syncing: what a client waits for (an MSC2638 refresh relayed
 * through `device_lists.changed`) comes through sync. Stops once `work` settles.
 */
async function syncWhile<T>(ctx: DemoContext, progress: BobProgress, work: Promise<T>): Promise<T> {
  let done = false;
  const pump = (async () => {
    while (!done) {
      try {
        await bobSyncsOnce(ctx, progress);
      } catch (error) {
        ctx.log.write("warn", `Bob's app: /sync failed (${describeError(error)}); it syncs again`);
      }
      if (!done) await new Promise((resolve) => setTimeout(resolve, SYNC_EVERY_MS));
    }
  })();
  try {
    return await work;
  } finally {
    done = true;
    await pump;
  }
}

/** One line for the log: `stale (reported: "…")`, `fresh (client only)`, … */
export function trustLine(trust: DeviceListTrust): string {
  switch (trust.state) {
    case "unknown":
      return "unknown";
    case "fresh":
      return `fresh (cleared: ${trust.cleared === "server_and_client" ? "server and client" : "client only"})`;
    case "stale":
      return `stale (${trust.reasons.map((r) => r.kind).join(", ")})`;
    case "refreshing":
      return `refreshing via ${trust.via === "msc2638" ? "MSC2638" : "re-query"}`;
    case "failed":
      return `failed (${trust.server}: ${trust.error.code ?? trust.error.name})`;
  }
}
