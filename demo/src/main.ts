import { loadCryptoWasm } from "matrix-e2ee-devices/advanced";
import type { MockHomeserver, ProfileName } from "matrix-e2ee-devices/testing";
import type { DemoContext } from "./context.js";
import { DemoError, errorChain } from "./demo-error.js";
import { byId, element } from "./dom.js";
import { startEmbeddedServer } from "./embedded-server.js";
import { describeError, LogPanel } from "./log-panel.js";
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
import { ServerPanel } from "./server-panel.js";
import { registerAndBootstrap, uploadDehydratedDeviceAndLeave } from "./steps/alice-first-device.js";
import { bobSendsWhileAliceIsAway } from "./steps/bob-sends.js";
import { type NewLoginView, newLoginWithRecoveryKey } from "./steps/new-login.js";

/** Wires the page: four steps in order, the server panel, the log. */

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
      bobSendsWhileAliceIsAway(ctx, Math.min(200, Math.max(1, Math.round(roomCount.valueAsNumber) || 1))),
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
  const box = byId(`step-${step}-error`, HTMLDivElement);
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
    element("p", `Click the step again to resume from where it stopped.`, "error-hint"),
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

/** Closes whatever clients the previous run left open (a failed step keeps its client for the retry). */
function closeClients(previous: DemoContext | undefined): void {
  if (previous === undefined) return;
  previous.newLogin?.stopListening?.();
  for (const client of [previous.aliceFirst?.client, previous.bob?.client, previous.newLogin?.client]) {
    void client?.close().catch(() => {});
  }
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
  for (const step of [1, 2, 3, 4] as const) {
    setState(step, step === 1 ? "ready" : "locked");
    showStepError(step, undefined);
  }
  refreshButtons();
  panel.attach(ctx);
}

const panel = new ServerPanel({ onProfileChange: startOver });

for (const button of document.querySelectorAll<HTMLButtonElement>("button[data-step]")) {
  button.addEventListener("click", () => void runStep(Number(button.dataset.step) as StepNumber));
}
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
