import type {
  DeviceFacts,
  DisplayedDevice,
  E2eeClient,
  RecipientPlan,
  RoomSendResult,
} from "matrix-e2ee-devices";
import { matrixCalls, openClient, register } from "../accounts.js";
import type { BobProgress, BobRoom, DemoContext } from "../context.js";
import { DemoError } from "../demo-error.js";
import { watchClient } from "../observe.js";
import { type RogueInbox, rogueInbox } from "../rogue-device.js";
import { createEncryptedRoom, ROOM_ENCRYPTION, ROOM_HISTORY_VISIBILITY, syncOnce } from "../rooms.js";

/**
 * Step 3 and what follows it: while Alice is away, Bob — another user, with his own client —
 * opens encrypted rooms with her and writes to them with `client.rooms.send`. The SDK tracks her,
 * queries her keys, claims Olm sessions, shares the room key as its recipient plan says (every
 * device of hers that may have it, the dehydrated one included: it is cross-signed by her), sends
 * the to-device messages and then the event. What it did for each device comes back with the
 * result (`plan`, `applied`), and the card's device table shows it.
 *
 * Bob stays online afterwards: "Bob sends another message" writes once more with the same client,
 * after a `/sync` that tells his crypto layer about any device added to Alice's list meanwhile.
 */

/** What the "Who gets the room keys" card shows. */
export interface RecipientsView {
  /** A user's devices as Bob's client sees them (`rooms.devices`, with MSC3814's display labels). */
  devices(userId: string, devices: readonly DisplayedDevice<DeviceFacts>[]): void;
  /** One send's plan and what the crypto layer did. */
  sent(room: BobRoom, result: RoomSendResult): void;
  /** The rogue device's inbox on the server, once there is one. */
  rogueInbox(inbox: RogueInbox): void;
}

const TOPICS: readonly { name: string; messages: readonly string[] }[] = [
  { name: "Lunch plans", messages: ["Noodles at 12:30?", "I booked a table for four."] },
  { name: "Release 2.0", messages: ["The release candidate is tagged.", "Changelog draft is in the doc."] },
  { name: "Weekend hike", messages: ["Forecast says sunny on Saturday.", "Meet at the station at 8."] },
  { name: "Book club", messages: ["Chapter 7 for next week.", "Bring the snacks this time!"] },
  { name: "Design review", messages: ["New mock-ups are up.", "Thursday 3 pm works for me."] },
];

const MORE: readonly string[] = [
  "One more thing: the venue changed.",
  "Did you see the new plan?",
  "Call me when you are back.",
];

function topic(index: number): { name: string; messages: readonly string[] } {
  const base = TOPICS[index % TOPICS.length]!;
  const round = Math.floor(index / TOPICS.length);
  return round === 0 ? base : { name: `${base.name} #${round + 1}`, messages: base.messages };
}

/** Step 3: `rooms` rooms, two messages each. A failed attempt resumes where it stopped. */
export async function bobSendsWhileAliceIsAway(
  ctx: DemoContext,
  rooms: number,
  view: RecipientsView,
): Promise<void> {
  const alice = ctx.alice;
  if (alice === undefined) throw new DemoError("out_of_order", "run step 1 first: Alice has no account yet");
  const progress = await bobOnline(ctx);
  const bob = progress.client!;
  await catchUp(ctx, progress, view);
  for (let index = progress.rooms.length; index < rooms; index = progress.rooms.length) {
    await fillRoom(ctx, progress, bob, alice.userId, topic(index), index, view);
  }
  reportInboxes(ctx, view);
}

/** After step 3: one more message, in Bob's first room. */
export async function bobSendsAnother(ctx: DemoContext, view: RecipientsView): Promise<void> {
  const progress = ctx.bob;
  const bob = progress?.client;
  const room = progress?.rooms[0];
  if (progress === undefined || bob === undefined || room === undefined)
    throw new DemoError("out_of_order", "run step 3 first");
  await catchUp(ctx, progress, view);
  // Kept until it is sent: a retry after a lost answer reuses the transaction id.
  progress.pendingExtra ??= {
    room,
    body: MORE[progress.extraSent % MORE.length]!,
    txnId: `demo-more-${progress.extraSent}`,
  };
  const pending = progress.pendingExtra;
  const plan = await planned(ctx, bob, pending.room);
  const result = await bob.rooms.send(
    pending.room.roomId,
    "m.room.message",
    { msgtype: "m.text", body: pending.body },
    { expectedPlan: plan, txnId: pending.txnId },
  );
  progress.pendingExtra = undefined;
  progress.extraSent++;
  progress.messagesSent++;
  view.sent(pending.room, result);
  logApplied(ctx, pending.room, result, 1);
  reportInboxes(ctx, view);
}

/**
 * Bob's client looks at Alice's devices again, after a `/sync` (used once the server changed her
 * list). Does nothing before Bob is online.
 */
export async function bobLooksAgain(ctx: DemoContext, view: RecipientsView): Promise<void> {
  const progress = ctx.bob;
  if (progress?.client === undefined) return;
  await catchUp(ctx, progress, view);
}

/** Registers Bob and opens his client, once (step 3 and card 5 share him). */
export async function bobOnline(ctx: DemoContext): Promise<BobProgress> {
  const { log } = ctx;
  if (ctx.bob === undefined) {
    const { account, session } = await register(ctx, "bob", "Bob");
    ctx.bob = { account, session, rooms: [], messagesSent: 0, extraSent: 0 };
    log.write("info", `Bob registered as ${account.userId} (device ${session.deviceId})`);
  }
  const progress = ctx.bob;
  if (progress.client === undefined) {
    progress.client = await openClient(ctx, progress.account, progress.session, "Bob");
    watchClient(progress.client.events, log, "Bob", ctx.retries);
  }
  return progress;
}

/**
 * One `/sync` of Bob's app, its encryption data handed to the SDK (`sync.receiveClassic`): a change
 * of Alice's device list marks her keys for a new query. Then Bob's view of her devices.
 */
async function catchUp(ctx: DemoContext, progress: BobProgress, view: RecipientsView): Promise<void> {
  const bob = progress.client!;
  await bobSyncsOnce(ctx, progress);
  const aliceId = ctx.alice!.userId;
  const devices = await bob.rooms.devices(aliceId);
  view.devices(aliceId, devices);
  const described = devices.map((d) => {
    const flags = [
      d.dehydrated ? "dehydrated" : undefined,
      d.crossSignedByOwner ? "cross-signed by Alice" : "NOT cross-signed by Alice",
    ].filter(Boolean);
    return `${d.label === d.deviceId ? d.deviceId : `"${d.label}" ${d.deviceId}`} (${flags.join(", ")})`;
  });
  ctx.log.write("info", `Bob's client sees Alice's devices: ${described.join("; ")}`);
  if (devices.filter((d) => d.dehydrated).length > 1) {
    ctx.log.write(
      "warn",
      "more than one of Alice's devices says it is dehydrated: MSC3814 says to show them all as " +
        'ordinary devices, none as "Offline device"',
    );
  }
}

/**
 * One `/sync` of Bob's app, continuing from the last, its encryption data handed to his client
 * (`sync.receiveClassic`). The only place Bob's app syncs, one request after the other: each
 * continues from the `since` the last one returned.
 */
export function bobSyncsOnce(ctx: DemoContext, progress: BobProgress): Promise<void> {
  const previous = syncing.get(progress) ?? Promise.resolve();
  const next = previous
    .catch(() => {})
    .then(async () => {
      const calls = matrixCalls(ctx, "Bob", progress.session);
      const { nextBatch, response } = await syncOnce(calls, progress.since);
      await progress.client!.sync.receiveClassic(response);
      progress.since = nextBatch;
    });
  syncing.set(progress, next);
  return next;
}

/** Bob's `/sync` under way, if any: the next waits for it (one `since` at a time). */
const syncing = new WeakMap<BobProgress, Promise<void>>();

/** The plan Bob's client shows before a room's first message; the send must keep to it. */
async function planned(ctx: DemoContext, bob: E2eeClient, room: BobRoom): Promise<RecipientPlan> {
  const plan = await bob.rooms.planRecipients(room.roomId);
  const share = plan.devices.filter((d) => d.decision === "share").length;
  const withhold = plan.devices.filter((d) => d.decision === "withhold");
  ctx.log.write(
    "info",
    `"${room.name}": Bob's client plans the room key: ${share} ${share === 1 ? "device gets" : "devices get"} it` +
      (withhold.length > 0
        ? `, withheld from ${withhold.map((d) => `${d.deviceId} (${d.code}: ${d.reason})`).join(", ")}`
        : "") +
      "; the send is held to this plan (expectedPlan)",
  );
  return plan;
}

async function fillRoom(
  ctx: DemoContext,
  progress: BobProgress,
  bob: E2eeClient,
  aliceId: string,
  { name, messages }: { name: string; messages: readonly string[] },
  index: number,
  view: RecipientsView,
): Promise<void> {
  // createRoom is not repeatable (a replay makes a second room): remember the room made.
  progress.current ??= {
    roomId: await createEncryptedRoom(matrixCalls(ctx, "Bob", progress.session), name, aliceId),
    name,
    index,
    messagesSent: 0,
  };
  const current = progress.current;
  const room: BobRoom = { roomId: current.roomId, name, index };
  // Bob made the room, so his app knows its state: the SDK need not ask the server for it.
  await bob.rooms.updateRoom(room.roomId, {
    encryption: ROOM_ENCRYPTION,
    historyVisibility: ROOM_HISTORY_VISIBILITY,
    members: { [progress.session.userId]: "join", [aliceId]: "invite" },
  });
  let plan: RecipientPlan | undefined =
    current.messagesSent === 0 ? await planned(ctx, bob, room) : undefined;
  let last: RoomSendResult | undefined;
  for (; current.messagesSent < messages.length; current.messagesSent++, progress.messagesSent++) {
    // The transaction id makes a retry after a lost answer harmless: the server sends it once.
    last = await bob.rooms.send(
      room.roomId,
      "m.room.message",
      { msgtype: "m.text", body: messages[current.messagesSent]! },
      { txnId: `demo-${index}-${current.messagesSent}`, ...(plan ? { expectedPlan: plan } : {}) },
    );
    plan = undefined;
    view.sent(room, last);
  }
  progress.rooms.push(room);
  progress.current = undefined;
  if (last !== undefined) logApplied(ctx, room, last, messages.length);
}

/** `"Lunch plans": room key shared with 2 of Alice's devices [...]; withheld from 1 [...]`. */
function logApplied(ctx: DemoContext, room: BobRoom, result: RoomSendResult, sent: number): void {
  const aliceId = ctx.alice!.userId;
  const mark = (id: string) =>
    id === ctx.dehydratedDeviceId ? `${id} (dehydrated)` : id === ctx.rogueDeviceId ? `${id} (rogue)` : id;
  const mine = result.applied.filter((a) => a.userId === aliceId);
  const shared = mine.filter((a) => a.outcome === "shared").map((a) => mark(a.deviceId));
  const withheld = mine.filter((a) => a.outcome === "withheld").map((a) => `${mark(a.deviceId)}: ${a.code}`);
  const unchanged = mine.filter((a) => a.outcome === "unchanged").length;
  ctx.log.write(
    "ok",
    `"${room.name}": room key shared with ${shared.length} of Alice's devices [${shared.join(", ")}]` +
      (withheld.length > 0 ? `; withheld from ${withheld.length} [${withheld.join(", ")}]` : "") +
      (unchanged > 0 ? `; ${unchanged} had it already` : "") +
      `; ${sent} encrypted ${sent === 1 ? "message" : "messages"} sent`,
  );
}

/** What waits on the server for the dehydrated device, and what reached the rogue one. */
function reportInboxes(ctx: DemoContext, view: RecipientsView): void {
  const aliceId = ctx.alice!.userId;
  if (ctx.dehydratedDeviceId !== undefined) {
    const inbox = ctx.hs.control.toDeviceInbox(aliceId, ctx.dehydratedDeviceId);
    ctx.waitingToDevice = inbox.events.length;
    ctx.log.write(
      "ok",
      `${inbox.events.length} to-device messages (one room key each) wait in the dehydrated device's inbox`,
    );
  }
  if (ctx.rogueDeviceId !== undefined) {
    const inbox = rogueInbox(ctx.hs, aliceId, ctx.rogueDeviceId);
    view.rogueInbox(inbox);
    ctx.log.write(inbox.roomKeys === 0 ? "ok" : "error", `server side: ${describeRogueInbox(inbox)}`);
  }
}

/** `rogue device inbox: 0 room keys, 3 withheld notices (m.unverified)`. */
export function describeRogueInbox(inbox: RogueInbox): string {
  const keys = `${inbox.roomKeys} room ${inbox.roomKeys === 1 ? "key" : "keys"}`;
  const notices = `${inbox.withheld} withheld ${inbox.withheld === 1 ? "notice" : "notices"}`;
  return `rogue device inbox: ${keys}, ${notices}${inbox.codes.length > 0 ? ` (${inbox.codes.join(", ")})` : ""}`;
}
