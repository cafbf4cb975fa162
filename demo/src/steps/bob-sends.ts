import { EncryptionSettings, RoomId, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import type { E2eeClient } from "matrix-e2ee-devices";
import { matrixCalls, openClient, register } from "../accounts.js";
import type { BobProgress, DemoContext } from "../context.js";
import { DemoError } from "../demo-error.js";
import type { MatrixCalls } from "../matrix-calls.js";
import { watchClient } from "../observe.js";
import { claimKeys, createEncryptedRoom, sendEncrypted, sendToDevice } from "../rooms.js";

/**
 * Step 3: while Alice is away, Bob — another user with his own crypto-wasm machine behind the
 * SDK's facade — opens encrypted rooms with her, shares each room's Megolm key with every device
 * of hers (the dehydrated one included: it is cross-signed by her), and sends messages.
 *
 * The SDK sends the requests its machine queues itself (`processOutgoingRequests`: key uploads and
 * queries). The ones an app asks the machine for — a key claim, a room-key share — come back to
 * the app, which sends them with its own calls and hands the answers to `olmMachine`.
 */

const TOPICS: readonly { name: string; messages: readonly string[] }[] = [
  { name: "Lunch plans", messages: ["Noodles at 12:30?", "I booked a table for four."] },
  { name: "Release 2.0", messages: ["The release candidate is tagged.", "Changelog draft is in the doc."] },
  { name: "Weekend hike", messages: ["Forecast says sunny on Saturday.", "Meet at the station at 8."] },
  { name: "Book club", messages: ["Chapter 7 for next week.", "Bring the snacks this time!"] },
  { name: "Design review", messages: ["New mock-ups are up.", "Thursday 3 pm works for me."] },
];

function topic(index: number): { name: string; messages: readonly string[] } {
  const base = TOPICS[index % TOPICS.length]!;
  const round = Math.floor(index / TOPICS.length);
  return round === 0 ? base : { name: `${base.name} #${round + 1}`, messages: base.messages };
}

export async function bobSendsWhileAliceIsAway(ctx: DemoContext, rooms: number): Promise<void> {
  const { log } = ctx;
  const alice = ctx.alice;
  if (alice === undefined) throw new DemoError("out_of_order", "run step 1 first: Alice has no account yet");
  if (ctx.bob === undefined) {
    const { account, session } = await register(ctx, "bob", "Bob");
    ctx.bob = { account, session, sessionsReady: false, roomsDone: 0, messagesSent: 0 };
    log.write("info", `Bob registered as ${account.userId} (device ${session.deviceId})`);
  }
  const progress = ctx.bob;
  if (progress.client === undefined) {
    progress.client = await openClient(ctx, progress.account, progress.session, "Bob");
    watchClient(progress.client.events, log, "Bob", ctx.retries);
  }
  const bob = progress.client;
  const calls = matrixCalls(ctx, "Bob", progress.session);
  if (!progress.sessionsReady) {
    await learnAliceDevices(ctx, bob, calls);
    progress.sessionsReady = true;
  }
  for (; progress.roomsDone < rooms; progress.roomsDone++) {
    await shareAndSend(
      ctx,
      progress,
      bob,
      calls,
      alice.userId,
      topic(progress.roomsDone),
      progress.roomsDone,
    );
  }
  await bob.close();
  progress.client = undefined;
  log.write("info", "Bob closes his app");
  if (ctx.dehydratedDeviceId !== undefined) {
    const inbox = ctx.hs.control.toDeviceInbox(alice.userId, ctx.dehydratedDeviceId);
    ctx.waitingToDevice = inbox.events.length;
    log.write(
      "ok",
      `${inbox.events.length} to-device messages (one room key each) wait in the dehydrated device's inbox`,
    );
  }
}

/** Bob's machine queries Alice's keys and opens Olm sessions with each of her devices. */
async function learnAliceDevices(ctx: DemoContext, bob: E2eeClient, calls: MatrixCalls): Promise<void> {
  const aliceId = ctx.alice!.userId;
  const machine = bob.olmMachine;
  await machine.updateTrackedUsers([new UserId(aliceId)]);
  await bob.processOutgoingRequests();
  const devices = await machine.getUserDevices(new UserId(aliceId));
  const described = devices.devices().map((device) => {
    const id = device.deviceId.toString();
    const flags = [
      device.isDehydrated ? "dehydrated" : undefined,
      device.isCrossSignedByOwner() ? "cross-signed" : "NOT cross-signed",
    ];
    device.free();
    return `${id} (${flags.filter(Boolean).join(", ")})`;
  });
  devices.free();
  ctx.log.write("info", `Bob's machine sees Alice's devices: ${described.join("; ")}`);
  // The machine says which one-time keys it lacks; the app claims them and hands back the answer.
  const claim = await machine.getMissingSessions([new UserId(aliceId)]);
  if (claim) {
    try {
      const answer = await claimKeys(calls, claim.body);
      await machine.markRequestAsSent(claim.id, claim.type, JSON.stringify(answer));
    } finally {
      claim.free();
    }
  }
  ctx.log.write(
    "info",
    claim
      ? "Bob claimed one-time keys (keys/claim) and opened an Olm session with each of them"
      : "Bob already had Olm sessions with all of them",
  );
}

async function shareAndSend(
  ctx: DemoContext,
  progress: BobProgress,
  bob: E2eeClient,
  calls: MatrixCalls,
  aliceId: string,
  { name, messages }: { name: string; messages: readonly string[] },
  index: number,
): Promise<void> {
  // createRoom is not repeatable (a replay makes a second room): remember the room made.
  progress.current ??= { roomId: await createEncryptedRoom(calls, name, aliceId), messagesSent: 0 };
  const current = progress.current;
  const room = new RoomId(current.roomId);
  current.recipients ??= await shareRoomKey(bob, calls, room, aliceId);
  const recipients = current.recipients;
  for (; current.messagesSent < messages.length; current.messagesSent++, progress.messagesSent++) {
    const body = messages[current.messagesSent]!;
    const content = JSON.parse(
      await bob.olmMachine.encryptRoomEvent(
        room,
        "m.room.message",
        JSON.stringify({ msgtype: "m.text", body }),
      ),
    );
    await sendEncrypted(calls, current.roomId, content, `demo-${index}-${current.messagesSent}`);
  }
  progress.current = undefined;
  const marked = recipients.map((id) => (id === ctx.dehydratedDeviceId ? `${id} (dehydrated)` : id));
  ctx.log.write(
    "ok",
    `"${name}": room key shared with ${recipients.length} of Alice's devices [${marked.join(", ")}]; ` +
      `${messages.length} encrypted messages sent`,
  );
}

/** Sends the room key to-device; returns which of Alice's devices received it. */
async function shareRoomKey(bob: E2eeClient, calls: MatrixCalls, room: RoomId, aliceId: string) {
  const machine = bob.olmMachine;
  const requests = await machine.shareRoomKey(room, [new UserId(aliceId)], new EncryptionSettings());
  const recipients = new Set<string>();
  try {
    for (const request of requests) {
      // Withheld notices (`m.room_key.withheld`) travel the same way; only encrypted ones carry the key.
      const carriesKey = request.event_type === "m.room.encrypted";
      const body = JSON.parse(request.body) as { messages?: Record<string, Record<string, unknown>> };
      if (carriesKey)
        for (const deviceId of Object.keys(body.messages?.[aliceId] ?? {})) recipients.add(deviceId);
      await sendToDevice(calls, request.event_type, request.txn_id, request.body);
      await machine.markRequestAsSent(request.id, request.type, "{}");
    }
  } finally {
    for (const request of requests) request.free();
  }
  return [...recipients];
}
