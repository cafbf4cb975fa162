import { byId, element } from "./dom.js";
import type { NewLoginResult } from "./steps/new-login.js";

/** Shows step 4's outcome: the drain's counts and Bob's messages as Alice's new device reads them. */
export function showResults(result: NewLoginResult): void {
  const stats = byId("drain-stats", HTMLDListElement);
  const drain = result.drain;
  const readable = result.messages.filter((m) => m.body !== undefined).length;
  const rows: [string, string][] = [
    ["New device", result.deviceId],
    ["Dehydrated device", drain?.deviceId ?? "none on the server"],
    ["To-device events", String(drain?.events ?? 0)],
    ["Room keys imported", String(drain?.roomKeys ?? 0)],
    ["Pages", String(drain?.pages ?? 0)],
    ["Drain time", `${drain?.durationMs ?? 0} ms`],
    ["Readable before the drain", `${result.readableBeforeDrain} of ${result.messages.length} messages`],
    ["Readable after the drain", `${readable} of ${result.messages.length} messages`],
  ];
  stats.replaceChildren(...rows.flatMap(([term, value]) => [element("dt", term), element("dd", value)]));
  stats.hidden = false;

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

export function clearResults(): void {
  byId("drain-stats", HTMLDListElement).hidden = true;
  const list = byId("messages", HTMLUListElement);
  list.replaceChildren();
  list.hidden = true;
}
