import type { DrainPageReport } from "matrix-e2ee-devices";
import { byId, element } from "./dom.js";
import type { NewLoginResult, Phase } from "./steps/new-login.js";
import { PHASE_LABELS } from "./steps/new-login.js";

/**
 * Step 4's card: the live phase line, the drain's progress (fed by `dehydration.drain.page`), where
 * the time went, then the counts and Bob's messages as Alice's new device reads them.
 */

const progress = () => byId("drain-progress", HTMLDivElement);

/** The drain's running totals (resumed runs included), as each page is stored. */
export function showDrainPage(report: DrainPageReport): void {
  const box = progress();
  const { pages, events, roomKeys } = report.totals;
  box.hidden = false;
  box.dataset.state = report.next === "more" ? "running" : "done";
  box.dataset.pages = String(pages);
  box.dataset.events = String(events);
  box.dataset.roomKeys = String(roomKeys);
  for (const [field, value] of Object.entries({ pages, events, roomKeys })) {
    const slot = box.querySelector<HTMLElement>(`[data-field="${field}"]`);
    if (slot) slot.textContent = String(value);
  }
}

/** A failed drain: the totals stay (the next attempt resumes after the last stored page). */
export function showDrainStopped(): void {
  progress().dataset.state = "stopped";
}

/** Shows the box as soon as the drain starts, before its first page. */
export function showDrainStarted(): void {
  const box = progress();
  box.hidden = false;
  if (box.dataset.state !== "done") box.dataset.state = "running";
}

/** The login's device, on the card (`data-device-id`) from the moment it exists. */
export function showNewDevice(deviceId: string, attempt: number): void {
  byId("step-4", HTMLLIElement).dataset.deviceId = deviceId;
  showPhase(attempt > 1 ? `attempt ${attempt}, on the same device ${deviceId}` : `new device ${deviceId}`);
}

export function showPhase(text: string | undefined): void {
  const line = byId("step-4-phase", HTMLParagraphElement);
  line.hidden = text === undefined;
  line.textContent = text ?? "";
}

/** `signing in 1.2 s · joining rooms 2.1 s · … — 4.3 s over 2 attempts`. */
export function formatTimings(spentMs: Record<Phase, number>, attempts: number): string {
  const parts = (Object.keys(PHASE_LABELS) as Phase[])
    .filter((phase) => spentMs[phase] > 0)
    .map((phase) => `${PHASE_LABELS[phase]} ${seconds(spentMs[phase])}`);
  const total = Object.values(spentMs).reduce((a, b) => a + b, 0);
  return `${parts.join(" · ")} — ${seconds(total)} in all${attempts > 1 ? ` over ${attempts} attempts` : ""}`;
}

export function showTimings(spentMs: Record<Phase, number>, attempts: number): void {
  const line = byId("step-4-timings", HTMLParagraphElement);
  line.textContent = `Time spent: ${formatTimings(spentMs, attempts)}`;
  line.hidden = false;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function showResults(result: NewLoginResult): void {
  const stats = byId("drain-stats", HTMLDListElement);
  const drain = result.drain;
  const readable = result.messages.filter((m) => m.body !== undefined).length;
  const found = result.messages.length;
  const drained =
    drain === undefined
      ? "nothing: no dehydrated device on the server"
      : `${plural(drain.toDeviceMessages, "to-device message")} in ${plural(drain.pages, "page")}` +
        (drain.resumed ? ", resumed after the last stored page" : "") +
        (drain.outcome === "truncated" ? " (cut off: more wait)" : "");
  const rows: [string, string][] = [
    [
      "New device",
      result.attempts > 1
        ? `${result.deviceId} (the same over ${result.attempts} attempts)`
        : result.deviceId,
    ],
    ["Dehydrated device", drain?.deviceId ?? "none on the server"],
    [
      "Waiting for it after Bob wrote",
      result.waitingToDevice === undefined ? "—" : plural(result.waitingToDevice, "to-device message"),
    ],
    ["Drained from its inbox", drained],
    ["Room keys received", String(drain?.roomKeys ?? 0)],
    [
      "Key requests sent",
      result.keyRequests === 0
        ? "none: the drain brought every key"
        : `${result.keyRequests}, for keys still missing`,
    ],
    ["Bob sent", `${plural(result.messagesSent, "message")} in ${plural(result.rooms, "room")}`],
    ["Readable before the drain", `${result.readableBeforeDrain} of ${plural(found, "message")}`],
    ["Readable after the drain", `${readable} of ${plural(found, "message")}`],
  ];
  stats.replaceChildren(...rows.flatMap(([term, value]) => [element("dt", term), element("dd", value)]));
  stats.hidden = false;
  showTimings(result.spentMs, result.attempts);

  const list = byId("messages", HTMLUListElement);
  list.replaceChildren(
    ...result.messages.map((m) => {
      const item = element("li", undefined, m.body === undefined ? "undecryptable" : "decrypted");
      item.append(
        element("span", m.room, "room"),
        element("span", m.sender, "sender"),
        element("span", m.body ?? `🔒 ${m.problem ?? "not decrypted"}`, "body"),
      );
      return item;
    }),
  );
  list.hidden = false;
}

/** Before a fresh login: nothing of an earlier one stays on the card. */
export function clearResults(): void {
  byId("drain-stats", HTMLDListElement).hidden = true;
  const list = byId("messages", HTMLUListElement);
  list.replaceChildren();
  list.hidden = true;
  const box = progress();
  box.hidden = true;
  box.dataset.state = "idle";
  for (const name of ["pages", "events", "roomKeys"]) delete box.dataset[name];
  for (const slot of box.querySelectorAll<HTMLElement>("[data-field]")) slot.textContent = "0";
  byId("step-4-timings", HTMLParagraphElement).hidden = true;
  delete byId("step-4", HTMLLIElement).dataset.deviceId;
  showPhase(undefined);
}
