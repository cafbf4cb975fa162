import type { DeviceFacts, DisplayedDevice, RoomSendResult } from "matrix-e2ee-devices";
import type { BobRoom } from "./context.js";
import { byId, element } from "./dom.js";
import type { RogueInbox } from "./rogue-device.js";
import { outcomeText, type SendOutcome, sendOutcomes } from "./send-outcome.js";
import { describeRogueInbox, type RecipientsView } from "./steps/bob-sends.js";

/**
 * The "Who gets the room keys" card: for each of a user's devices as Bob's client sees them, what
 * the crypto layer knows (dehydrated, cross-signed by the owner, verified) and what the latest send
 * did with the room key. Built only from what the SDK returns: `rooms.devices()` (with MSC3814's
 * display labels) and each send's `plan` (decision, code, reason, rule) and `applied`.
 */

type Outcome = SendOutcome;

interface UserTable {
  devices: readonly DisplayedDevice<DeviceFacts>[];
  /** The latest send's outcome per device. */
  latest: Map<string, Outcome>;
  /** Per device, per room: the latest outcome there. */
  rooms: Map<string, Map<string, Outcome["kind"]>>;
}

export interface RecipientsPanelOptions {
  /** "Alice" for `@alice:localhost`. */
  ownerName(userId: string): string;
  /** The demo's own note on a device ("Alice's first device", "injected by the server"); not the SDK's. */
  note(userId: string, deviceId: string): string | undefined;
  /** Which of the demo's roles a device plays, for the page's `data-kind`. */
  kind(userId: string, deviceId: string): string;
}

export class RecipientsPanel implements RecipientsView {
  readonly #tables = byId("device-tables", HTMLDivElement);
  readonly #inbox = byId("rogue-inbox", HTMLParagraphElement);
  readonly #users = new Map<string, UserTable>();
  readonly #options: RecipientsPanelOptions;

  constructor(options: RecipientsPanelOptions) {
    this.#options = options;
  }

  clear(): void {
    this.#users.clear();
    this.#tables.replaceChildren();
    this.#inbox.hidden = true;
    this.#inbox.textContent = "";
  }

  devices(userId: string, devices: readonly DisplayedDevice<DeviceFacts>[]): void {
    this.#user(userId).devices = devices;
    this.#render();
  }

  sent(room: BobRoom, result: RoomSendResult): void {
    for (const { decision, outcome } of sendOutcomes(result)) {
      const table = this.#users.get(decision.userId);
      if (table === undefined) continue;
      table.latest.set(decision.deviceId, outcome);
      const perRoom = table.rooms.get(decision.deviceId) ?? new Map<string, Outcome["kind"]>();
      // "unchanged" says nothing new about this room: what an earlier send did there stands.
      if (outcome.kind !== "unchanged" || !perRoom.has(room.roomId)) perRoom.set(room.roomId, outcome.kind);
      table.rooms.set(decision.deviceId, perRoom);
    }
    this.#render();
  }

  rogueInbox(inbox: RogueInbox): void {
    this.#inbox.hidden = false;
    this.#inbox.dataset.roomKeys = String(inbox.roomKeys);
    this.#inbox.dataset.withheld = String(inbox.withheld);
    this.#inbox.textContent = `Server side: ${describeRogueInbox(inbox)}`;
  }

  #user(userId: string): UserTable {
    let table = this.#users.get(userId);
    if (table === undefined) {
      table = { devices: [], latest: new Map(), rooms: new Map() };
      this.#users.set(userId, table);
    }
    return table;
  }

  #render(): void {
    this.#tables.replaceChildren(
      ...[...this.#users].map(([userId, table]) => this.#renderUser(userId, table)),
    );
  }

  #renderUser(userId: string, table: UserTable): HTMLElement {
    const owner = this.#options.ownerName(userId);
    const box = element("div", undefined, "device-table");
    box.dataset.userId = userId;
    const heading = element("h4", `${owner}'s devices, as Bob's client sees them`);
    const columns = ["Device", "Dehydrated", `Cross-signed by ${owner}`, "Verified by Bob", "Room key"];
    const head = element("tr");
    head.append(...columns.map((c) => element("th", c)));
    const thead = element("thead");
    thead.append(head);
    const tbody = element("tbody");
    tbody.append(...table.devices.map((device) => this.#row(userId, device, table, columns)));
    const grid = element("table");
    grid.append(thead, tbody);
    const scroll = element("div", undefined, "table-scroll");
    scroll.append(grid);
    box.append(heading, scroll);
    return box;
  }

  #row(
    userId: string,
    device: DisplayedDevice<DeviceFacts>,
    table: UserTable,
    columns: readonly string[],
  ): HTMLTableRowElement {
    const row = element("tr");
    row.dataset.deviceId = device.deviceId;
    row.dataset.kind = this.#options.kind(userId, device.deviceId);
    row.dataset.display = device.display;

    const name = element("td", undefined, "device-name");
    name.dataset.col = "device";
    name.append(element("span", device.label, "device-label"));
    if (device.label !== device.deviceId) name.append(element("code", device.deviceId, "device-id"));
    const note = this.#options.note(userId, device.deviceId);
    if (note !== undefined) name.append(element("span", note, "device-note"));

    const latest = table.latest.get(device.deviceId);
    const outcome = element("td", undefined, "device-outcome");
    outcome.dataset.col = "outcome";
    row.dataset.outcome = latest?.kind ?? "none";
    if (latest?.code !== undefined && latest.kind === "withheld") row.dataset.code = latest.code;
    if (latest?.decision) row.dataset.rule = latest.decision.rule;
    outcome.append(element("span", outcomeText(latest), "outcome-text"));
    const tally = tallyText(table.rooms.get(device.deviceId));
    if (tally !== undefined) outcome.append(element("span", tally, "outcome-tally"));

    const cells = [
      name,
      flag(device.dehydrated, "dehydrated"),
      flag(device.crossSignedByOwner, "cross-signed"),
      flag(device.crossSigningTrusted || device.localTrust === "verified", "verified"),
      outcome,
    ];
    cells.forEach((cell, i) => {
      cell.dataset.label = columns[i]!;
    });
    row.append(...cells);
    return row;
  }
}

function flag(on: boolean, col: string): HTMLTableCellElement {
  const cell = element("td", on ? "✓" : "–", on ? "flag flag-on" : "flag");
  cell.dataset.col = col;
  return cell;
}

/** `got it in 3 of 3 rooms`, over every room a send of Bob's planned for this device. */
function tallyText(rooms: ReadonlyMap<string, Outcome["kind"]> | undefined): string | undefined {
  if (rooms === undefined || rooms.size === 0) return undefined;
  const got = [...rooms.values()].filter((k) => k === "shared").length;
  return `got it in ${got} of ${rooms.size} ${rooms.size === 1 ? "room" : "rooms"}`;
}
