import { loadCryptoWasm } from "matrix-e2ee-devices/advanced";
import type { MockHomeserver, ProfileName } from "matrix-e2ee-devices/testing";
import type { DemoContext } from "./context.js";
import { DemoError, errorChain } from "./demo-error.js";
import { byId, element } from "./dom.js";
import { startEmbeddedServer } from "./embedded-server.js";
import { describeError, LogPanel } from "./log-panel.js";
import { RecipientsPanel } from "./recipients.js";
import { RemoteFriendPanel } from "./remote-friend-panel.js";
import {
  clearResults,
  showDrainPage,
  showDrainStarted,
  showDrainStopped,
  showNewDevice,
  showPhase,
  showResults,
  showTimings,
} from "./results.js";
import { createRogueDehydratedDevice, rogueInbox } from "./rogue-device.js";
import { ServerPanel } from "./server-panel.js";
import { registerAndBootstrap, uploadDehydratedDeviceAndLeave } from "./steps/alice-first-device.js";
import { bobLooksAgain, bobSendsAnother, bobSendsWhileAliceIsAway } from "./steps/bob-sends.js";
import { type NewLoginView, newLoginWithRecoveryKey } from "./steps/new-login.js";
import {
  bobWritesToDave,
  closeDave,
  daveAddsDeviceUpdateLost,
  daveJoinsAndBobWrites,
  daveSaysNewPhone,
} from "./steps/remote-friend.js";

/**
 * Wires the page: four steps in order, the recipients card, card 5 (a remote friend's new device,
 * on its own), the server panel, the log.
 */

type StepNumber = 1 | 2 | 3 | 4;
type StepState = "locked" | "ready" | "running" | "done" | "failed";

declare global {
  interface Window {
    /** For poking around from the devtools console, e.g. `demo.homeserver.control.requestLog()`. */
    demo?: { readonly homeserver: MockHomeserver };
  }
}

const log = new LogPanel(byId("log", HTMLOListElement));
const recoveryKeyBox = byId("recovery-key-box", HTMLDivElement);
const recoveryKeyOutput = byId("recovery-key", HTMLOutputElement);
const recoveryKeyInput = byId("recovery-key-input", HTMLInputElement);
const roomCount = byId("room-count", HTMLInputElement);
const injectRogue = byId("inject-rogue", HTMLButtonElement);
const bobSendsMore = byId("bob-sends-more", HTMLButtonElement);
const daveJoins = byId("dave-joins", HTMLButtonElement);
const daveNewDevice = byId("dave-new-device", HTMLButtonElement);
const daveSays = byId("dave-says", HTMLButtonElement);
const bobWritesDave = byId("bob-writes-dave", HTMLButtonElement);

/** What the dehydrated device's display name is when the SDK makes one; the rogue copies it. */
const DEHYDRATED_DISPLAY_NAME = "Dehydrated device";

let ctx!: DemoContext;
let started = false;
let running = false;
const states = new Map<StepNumber, StepState>();

/** Step 4's card while it runs; the same across attempts, so a resumed drain keeps its totals. */
const newLoginView: NewLoginView = {
  phase: (phase, text) => {
    showPhase(text);
    if (phase === "drain") showDrainStarted();
  },
  deviceId: showNewDevice,
  drainPage: showDrainPage,
  drainStopped: showDrainStopped,
  timings: showTimings,
  result: showResults,
};

const recipients = new RecipientsPanel({
  ownerName: (userId) => (userId === ctx.alice?.userId ? "Alice" : userId),
  note: (_userId, deviceId) => {
    if (deviceId === ctx.aliceFirstDeviceId) return "her first device (step 1)";
    if (deviceId === ctx.dehydratedDeviceId) return "her real dehydrated device (step 2)";
    if (deviceId === ctx.rogueDeviceId) return "injected by the server";
    return undefined;
  },
  kind: (_userId, deviceId) =>
    deviceId === ctx.aliceFirstDeviceId
      ? "first"
      : deviceId === ctx.dehydratedDeviceId
        ? "dehydrated"
        : deviceId === ctx.rogueDeviceId
          ? "rogue"
          : "other",
});

const remoteFriend = new RemoteFriendPanel();

const steps: Record<StepNumber, { title: string; run: () => Promise<void>; repeatable: boolean }> = {
  1: {
    title: "Alice registers and sets up cross-signing",
    repeatable: false,
    run: async () => {
      recoveryKeyOutput.value = await registerAndBootstrap(ctx);
      recoveryKeyBox.hidden = false;
    },
  },
  2: {
    title: "Alice uploads a dehydrated device and goes offline",
    repeatable: false,
    run: () => uploadDehydratedDeviceAndLeave(ctx),
  },
  3: {
    title: "Bob shares room keys and sends encrypted messages",
    repeatable: false,
    run: () =>
      bobSendsWhileAliceIsAway(
        ctx,
        Math.min(200, Math.max(1, Math.round(roomCount.valueAsNumber) || 1)),
        recipients,
      ),
  },
  4: {
    title: "Alice signs in on a new device with her recovery key",
    // Fetching a dehydrated device's events never deletes them: every new login can drain again.
    repeatable: true,
    run: async () => {
      if (recoveryKeyInput.value.trim() === "")
        throw new DemoError("no_recovery_key", "enter the recovery key first");
      // A fresh login starts a clean card; a resumed one keeps what the earlier attempts showed.
      if (ctx.newLogin === undefined) clearResults();
      await newLoginWithRecoveryKey(ctx, recoveryKeyInput.value, newLoginView);
      showPhase(undefined);
    },
  },
};

function setState(step: StepNumber, state: StepState): void {
  states.set(step, state);
  byId(`step-${step}`, HTMLLIElement).dataset.state = state;
}

/** The failure in the card itself: each error of the chain by code and message, then what to do. */
function showStepError(step: StepNumber, error: unknown): void {
  showError(
    byId(`step-${step}-error`, HTMLDivElement),
    error,
    "Click the step again to resume from where it stopped.",
  );
}

function showError(box: HTMLDivElement, error: unknown, hint: string): void {
  if (error === undefined) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  box.replaceChildren(
    ...errorChain(error).map((part, i) => {
      const line = element("p", undefined, i === 0 ? "error-main" : "error-cause");
      line.append(
        element("span", i === 0 ? "Failed: " : "caused by: ", "error-lead"),
        element("code", part.code ?? part.name, "error-code"),
        document.createTextNode(` ${part.message}`),
      );
      return line;
    }),
    element("p", hint, "error-hint"),
  );
  box.hidden = false;
}

function refreshButtons(): void {
  for (const button of document.querySelectorAll<HTMLButtonElement>("button[data-step]")) {
    const step = Number(button.dataset.step) as StepNumber;
    const state = states.get(step);
    button.disabled =
      running || state === "locked" || state === "running" || (state === "done" && !steps[step].repeatable);
  }
  byId("paste-key", HTMLButtonElement).disabled = running || recoveryKeyOutput.value === "";
  // The server can play foul once Alice has a dehydrated device, before or after Bob writes.
  injectRogue.disabled = running || states.get(2) !== "done" || ctx.rogueDeviceId !== undefined;
  bobSendsMore.disabled = running || states.get(3) !== "done" || ctx.bob?.client === undefined;
  // Card 5 in its own order: Dave and Bob's room first, then the lost update, then the rest.
  const dave = ctx.dave;
  const welcomed = dave !== undefined && dave.sent > 0 && ctx.bob?.client !== undefined;
  daveJoins.disabled = running || welcomed;
  daveNewDevice.disabled = running || !welcomed || dave?.second?.keysUp === true;
  daveSays.disabled = running || !welcomed || dave?.second?.keysUp !== true;
  bobWritesDave.disabled = running || !welcomed;
  byId("restart", HTMLButtonElement).disabled = running;
}

async function runStep(step: StepNumber): Promise<void> {
  if (running) return;
  running = true;
  setState(step, "running");
  showStepError(step, undefined);
  refreshButtons();
  log.write("step", `Step ${step} · ${steps[step].title}`);
  try {
    await steps[step].run();
    setState(step, "done");
    const next = (step + 1) as StepNumber;
    if (next in steps && states.get(next) === "locked") setState(next, "ready");
  } catch (error) {
    log.write("error", `step ${step} failed: ${describeError(error)}`);
    log.write("info", `click step ${step} again to resume from where it stopped`);
    showStepError(step, error);
    if (step === 4) showPhase(undefined);
    setState(step, "failed");
  } finally {
    running = false;
    refreshButtons();
  }
}

/** Runs one of the recipients card's actions, under the same lock as the steps. */
async function runAction(title: string, work: () => Promise<void>): Promise<void> {
  if (running) return;
  running = true;
  const card = byId("recipients", HTMLElement);
  const box = byId("recipients-error", HTMLDivElement);
  card.dataset.action = "running";
  showError(box, undefined, "");
  refreshButtons();
  log.write("step", title);
  try {
    await work();
    card.dataset.action = "done";
  } catch (error) {
    log.write("error", `${title} failed: ${describeError(error)}`);
    log.write("info", "click the button again to retry");
    showError(box, error, "Click the button again to retry.");
    card.dataset.action = "failed";
  } finally {
    running = false;
    refreshButtons();
  }
}

/** Runs one of card 5's actions, under the same lock as the steps; its error shows in the card. */
async function runRemoteFriend(title: string, work: () => Promise<void>): Promise<void> {
  if (running) return;
  running = true;
  const card = byId("step-5", HTMLLIElement);
  const box = byId("step-5-error", HTMLDivElement);
  card.dataset.state = "running";
  card.dataset.action = "running";
  showError(box, undefined, "");
  refreshButtons();
  log.write("step", `Step 5 · ${title}`);
  try {
    await work();
    card.dataset.action = "done";
    // Done once the story ends well: the server holds a room key from Bob for Dave's new device.
    card.dataset.state = ctx.dave?.newDeviceHasKey === true ? "done" : "ready";
  } catch (error) {
    log.write("error", `${title} failed: ${describeError(error)}`);
    log.write("info", "click the button again to retry");
    showError(box, error, "Click the button again to retry.");
    card.dataset.action = "failed";
    card.dataset.state = "failed";
  } finally {
    running = false;
    refreshButtons();
  }
}

/** The server adds an unsigned dehydrated device to Alice's device list; Bob's client, if open, looks again. */
async function serverInjectsRogueDevice(): Promise<void> {
  const alice = ctx.alice;
  if (alice === undefined || ctx.dehydratedDeviceId === undefined)
    throw new DemoError("out_of_order", "run step 2 first: Alice has no dehydrated device yet");
  const rogue = await createRogueDehydratedDevice(alice.userId, DEHYDRATED_DISPLAY_NAME);
  ctx.hs.control.injectDeviceKeys(alice.userId, rogue.injection);
  ctx.rogueDeviceId = rogue.deviceId;
  log.write(
    "warn",
    `server: listed a dehydrated device ${rogue.deviceId} as Alice's (keys/query), named ` +
      `"${DEHYDRATED_DISPLAY_NAME}" like hers, with one-time keys to claim — signed by itself only, ` +
      "not by Alice's self-signing key",
  );
  recipients.rogueInbox(rogueInbox(ctx.hs, alice.userId, rogue.deviceId));
  try {
    // Bob's app syncs: `device_lists.changed` names Alice, and his client queries her keys again.
    await bobLooksAgain(ctx, recipients);
  } catch (error) {
    log.write("warn", `Bob's client did not look again yet (${describeError(error)}); his next send will`);
  }
}

/** Closes whatever clients the previous run left open (a failed step keeps its client for the retry). */
function closeClients(previous: DemoContext | undefined): void {
  if (previous === undefined) return;
  previous.newLogin?.stopListening?.();
  for (const client of [previous.aliceFirst?.client, previous.bob?.client, previous.newLogin?.client]) {
    void client?.close().catch(() => {});
  }
  closeDave(previous.dave);
}

function startOver(profile: ProfileName): void {
  closeClients(started ? ctx : undefined);
  started = true;
  const hs = startEmbeddedServer(profile);
  ctx = { hs, log, retries: { sdk: 0, app: 0 } };
  log.clear();
  recoveryKeyOutput.value = "";
  recoveryKeyBox.hidden = true;
  recoveryKeyInput.value = "";
  clearResults();
  recipients.clear();
  showError(byId("recipients-error", HTMLDivElement), undefined, "");
  delete byId("recipients", HTMLElement).dataset.action;
  for (const step of [1, 2, 3, 4] as const) {
    setState(step, step === 1 ? "ready" : "locked");
    showStepError(step, undefined);
  }
  const card5 = byId("step-5", HTMLLIElement);
  card5.dataset.state = "ready";
  delete card5.dataset.action;
  showError(byId("step-5-error", HTMLDivElement), undefined, "");
  remoteFriend.clear(profile, hs.profile);
  refreshButtons();
  panel.attach(ctx);
}

const panel = new ServerPanel({ onProfileChange: startOver });

for (const button of document.querySelectorAll<HTMLButtonElement>("button[data-step]")) {
  button.addEventListener("click", () => void runStep(Number(button.dataset.step) as StepNumber));
}
injectRogue.addEventListener(
  "click",
  () => void runAction("Server · injects a rogue dehydrated device for Alice", serverInjectsRogueDevice),
);
bobSendsMore.addEventListener(
  "click",
  () => void runAction("Bob · sends another message", () => bobSendsAnother(ctx, recipients)),
);
daveJoins.addEventListener(
  "click",
  () =>
    void runRemoteFriend("Dave joins Bob's room; Bob writes to him", () =>
      daveJoinsAndBobWrites(ctx, remoteFriend),
    ),
);
daveNewDevice.addEventListener(
  "click",
  () =>
    void runRemoteFriend("Dave adds a new device — the update is lost", () =>
      daveAddsDeviceUpdateLost(ctx, remoteFriend),
    ),
);
daveSays.addEventListener(
  "click",
  () => void runRemoteFriend("Dave says he has a new phone", () => daveSaysNewPhone(ctx, remoteFriend)),
);
bobWritesDave.addEventListener(
  "click",
  () => void runRemoteFriend("Bob sends Dave a message", () => bobWritesToDave(ctx, remoteFriend)),
);
byId("paste-key", HTMLButtonElement).addEventListener("click", () => {
  recoveryKeyInput.value = recoveryKeyOutput.value;
});
const showSdkLog = byId("show-sdk-log", HTMLInputElement);
showSdkLog.addEventListener("change", () => {
  byId("log", HTMLOListElement).classList.toggle("show-sdk", showSdkLog.checked);
});
byId("restart", HTMLButtonElement).addEventListener("click", () => startOver(panel.profile));

window.demo = {
  get homeserver() {
    return ctx.hs;
  },
};

startOver(panel.profile);
try {
  await loadCryptoWasm();
  log.write("info", "crypto-wasm loaded; the embedded homeserver is ready");
  document.body.dataset.ready = "true";
} catch (error) {
  log.write("error", `crypto-wasm did not load: ${describeError(error)}`);
}
