import type {
  DeviceFacts,
  DeviceListStaleReason,
  DeviceListTrust,
  DisplayedDevice,
  RoomSendResult,
} from "matrix-e2ee-devices";
import type { Profile, ProfileName, RemoteDeviceListCache } from "matrix-e2ee-devices/testing";
import { byId, element } from "./dom.js";
import { outcomeText, type SendOutcome, sendOutcomes } from "./send-outcome.js";
import {
  DAVE_USER_ID,
  type DaveDevice,
  REMOTE_SERVER,
  type RemoteFriendView,
} from "./steps/remote-friend.js";

/**
 * Card 5's live view: Bob's client's trust in Dave's device list (`deviceLists.trust`, updated on
 * `deviceLists.trustChanged`) and its history, what Bob's server holds of Dave's list, and a table
 * of Dave's devices — those Bob's client lists (`rooms.devices`) beside those Dave really has —
 * with the latest send's outcome (`plan`, and `applied`, which covers every send of the room's
 * current session) and, from the server's side, the
 * `m.room.encrypted` messages from Bob in each device's inbox. A device is shown as having the
 * room key (✓) only when its inbox holds one from Bob.
 */

type Outcome = SendOutcome;

export class RemoteFriendPanel implements RemoteFriendView {
  readonly #profile = byId("remote-profile", HTMLParagraphElement);
  readonly #trust = byId("dave-trust", HTMLParagraphElement);
  readonly #history = byId("dave-trust-history", HTMLOListElement);
  readonly #copy = byId("dave-server-copy", HTMLParagraphElement);
  readonly #table = byId("dave-devices", HTMLDivElement);
  readonly #verdict = byId("dave-new-device-outcome", HTMLParagraphElement);
  #listed: readonly DisplayedDevice<DeviceFacts>[] = [];
  #real: readonly DaveDevice[] = [];
  readonly #latest = new Map<string, Outcome>();
  #inboxes: ReadonlyMap<string, number> = new Map();
  #current: DeviceListTrust | undefined;
  /** Bob's sends since Dave's new device exists: only then can it have the key. */
  #sendsSinceNewDevice = 0;
  #mode: Profile["remoteDeviceLists"] = "synapse";

  clear(profileName: ProfileName, profile: Profile): void {
    this.#listed = [];
    this.#real = [];
    this.#latest.clear();
    this.#inboxes = new Map();
    this.#current = undefined;
    this.#sendsSinceNewDevice = 0;
    this.#history.replaceChildren();
    this.#history.hidden = true;
    this.#copy.hidden = true;
    this.#copy.textContent = "";
    this.#table.replaceChildren();
    this.#verdict.hidden = true;
    this.#verdict.textContent = "";
    this.#showTrust({ state: "unknown", userId: DAVE_USER_ID });
    this.#mode = profile.remoteDeviceLists;
    this.#profile.textContent = describeServer(profileName, profile);
  }

  trust(trust: DeviceListTrust): void {
    const previous = this.#current;
    this.#showTrust(trust);
    // `trust()` read back after an event says the same: one entry per change.
    if (previous !== undefined && JSON.stringify(previous) === JSON.stringify(trust)) return;
    if (trust.state === "unknown") return;
    const item = element("li", trustText(trust));
    item.dataset.state = trust.state;
    if (trust.state === "fresh") item.dataset.cleared = trust.cleared;
    if (trust.state === "refreshing") item.dataset.via = trust.via;
    this.#history.append(item);
    this.#history.hidden = false;
  }

  devices(listed: readonly DisplayedDevice<DeviceFacts>[], real: readonly DaveDevice[]): void {
    if (real.length > this.#real.length && real.some((d) => d.role === "new")) this.#sendsSinceNewDevice = 0;
    this.#listed = listed;
    this.#real = real;
    this.#render();
  }

  sent(result: RoomSendResult): void {
    for (const { decision, outcome } of sendOutcomes(result)) {
      if (decision.userId === DAVE_USER_ID) this.#latest.set(decision.deviceId, outcome);
    }
    if (this.#real.some((d) => d.role === "new")) this.#sendsSinceNewDevice++;
    this.#render();
  }

  inboxes(fromBob: ReadonlyMap<string, number>): void {
    this.#inboxes = fromBob;
    this.#render();
  }

  serverCopy(cache: RemoteDeviceListCache): void {
    this.#copy.hidden = false;
    this.#copy.dataset.stale = String(cache.stale);
    const truth = `${REMOTE_SERVER} lists ${count(cache.trueDeviceIds.length, "device")} (${cache.trueDeviceIds.join(", ")})`;
    const lost = cache.losingUpdates ? "; updates of it are being lost" : "";
    this.#copy.textContent = cache.cached
      ? `Server side: Bob's server's copy of Dave's list: ${count(cache.deviceIds.length, "device")} ` +
        `(${cache.deviceIds.join(", ")}); ${truth} — the copy is ${cache.stale ? "stale" : "up to date"}${lost}`
      : this.#mode === "federation"
        ? `Server side: Bob's server keeps no copy of Dave's list: it asks ${REMOTE_SERVER} at every query; ${truth}${lost}`
        : `Server side: Bob's server holds no copy of Dave's list yet; ${truth}${lost}`;
  }

  #showTrust(trust: DeviceListTrust): void {
    this.#current = trust;
    this.#trust.dataset.state = trust.state;
    if (trust.state === "fresh") this.#trust.dataset.cleared = trust.cleared;
    else delete this.#trust.dataset.cleared;
    this.#trust.replaceChildren(
      element("code", "bob.deviceLists.trust(dave)", "trust-call"),
      document.createTextNode(" → "),
      element("span", trustText(trust), "trust-text"),
    );
  }

  #render(): void {
    const columns = [
      "Device",
      "In Bob's list",
      "Room key, says Bob's send",
      "On the server: room keys from Bob",
    ];
    const head = element("tr");
    head.append(...columns.map((c) => element("th", c)));
    const thead = element("thead");
    thead.append(head);
    const tbody = element("tbody");
    const listedIds = new Set(this.#listed.map((d) => d.deviceId));
    const realIds = new Set(this.#real.map((d) => d.session.deviceId));
    const others = this.#listed.filter((d) => !realIds.has(d.deviceId));
    for (const device of this.#real) {
      const listed = this.#listed.find((d) => d.deviceId === device.session.deviceId);
      tbody.append(this.#row(device.session.deviceId, device, listed, listedIds, columns));
    }
    for (const device of others)
      tbody.append(this.#row(device.deviceId, undefined, device, listedIds, columns));
    const grid = element("table");
    grid.append(thead, tbody);
    const scroll = element("div", undefined, "table-scroll");
    scroll.append(grid);
    const heading = element("h4", "Dave's devices: Bob's client's list beside the ones he has");
    this.#table.replaceChildren(heading, scroll);
    this.#renderVerdict();
  }

  #row(
    deviceId: string,
    real: DaveDevice | undefined,
    listed: DisplayedDevice<DeviceFacts> | undefined,
    listedIds: ReadonlySet<string>,
    columns: readonly string[],
  ): HTMLTableRowElement {
    const row = element("tr");
    row.dataset.deviceId = deviceId;
    row.dataset.kind = real?.role ?? "other";
    const inList = listedIds.has(deviceId);
    row.dataset.listed = String(inList);

    const name = element("td", undefined, "device-name");
    name.dataset.col = "device";
    name.append(element("span", real?.name ?? listed?.label ?? deviceId, "device-label"));
    name.append(element("code", deviceId, "device-id"));
    name.append(
      element(
        "span",
        real === undefined
          ? "listed for Dave, not one of his"
          : real.role === "first"
            ? "his first device"
            : "logged in while his list's updates were lost",
        "device-note",
      ),
    );

    const listedCell = element("td", inList ? "✓" : "–", inList ? "flag flag-on" : "flag");
    listedCell.dataset.col = "listed";

    const latest = this.#latest.get(deviceId);
    row.dataset.outcome = latest?.kind ?? "none";
    const outcome = element("td", sendText(latest, inList), "device-outcome");
    outcome.dataset.col = "outcome";

    const got = this.#inboxes.get(deviceId);
    row.dataset.inbox = String(got ?? "");
    const inbox = element(
      "td",
      got === undefined ? "" : got > 0 ? `✓ ${count(got, "m.room.encrypted")}` : "✗ none",
      got === undefined ? "flag inbox" : got > 0 ? "flag flag-on inbox" : "flag inbox inbox-none",
    );
    inbox.dataset.col = "inbox";

    const cells = [name, listedCell, outcome, inbox];
    cells.forEach((cell, i) => {
      cell.dataset.label = columns[i]!;
    });
    row.append(...cells);
    return row;
  }

  /** Whether Dave's new phone got the room key, from the server's side, once Bob wrote after it appeared. */
  #renderVerdict(): void {
    const device = this.#real.find((d) => d.role === "new");
    if (device === undefined || this.#sendsSinceNewDevice === 0) {
      this.#verdict.hidden = true;
      return;
    }
    const id = device.session.deviceId;
    const inbox = this.#inboxes.get(id) ?? 0;
    const latest = this.#latest.get(id);
    const listed = this.#listed.some((d) => d.deviceId === id);
    const got = inbox > 0;
    this.#verdict.hidden = false;
    this.#verdict.dataset.got = String(got);
    if (got) {
      const said = latest?.kind === "shared" ? "Bob's send shared it (plan: share, applied: shared)" : "";
      this.#verdict.textContent =
        `✓ Dave's new phone ${id} got the room key: ${said}${said ? ", and " : ""}its inbox on the server ` +
        `holds ${count(inbox, "m.room.encrypted")} from Bob.`;
      return;
    }
    const trust = this.#current;
    const why = !listed
      ? "Bob's client does not list it, so the send left it out"
      : latest?.kind === "shared"
        ? "the SDK says it shared the key, yet the server holds none from Bob"
        : `the send did not share it (${sendText(latest, listed)})`;
    const hint =
      trust?.state === "fresh" && trust.cleared === "client_only"
        ? " The trust says client only — the server's copy may still be stale: Bob's client asked again, and a " +
          "server answering from a stale copy answers the same. Such a copy heals when the next update of " +
          "Dave's list arrives, or when the server itself hears from the unknown device (Synapse resyncs on " +
          "a room message from a device its copy lacks)."
        : trust?.state === "unknown"
          ? " Nothing told Bob's client that Dave's list is stale: try “Dave says he has a new phone”."
          : "";
    this.#verdict.textContent = `✗ Dave's new phone ${id} did not get the room key: ${why}.${hint}`;
  }
}

/** `fresh — cleared: server and client`, `stale — reported: “…”`, … */
export function trustText(trust: DeviceListTrust): string {
  switch (trust.state) {
    case "unknown":
      return "unknown — nothing judged yet: no sign of a stale list (the client follows it through sync as always)";
    case "fresh":
      return trust.cleared === "server_and_client"
        ? "fresh — cleared: server and client"
        : "fresh — cleared: client only — the server's copy may still be stale";
    case "stale":
      return `stale — ${reasonsText(trust.reasons)}`;
    case "refreshing":
      return (
        `refreshing via ${trust.via === "msc2638" ? "MSC2638 (Bob's server refreshes its copy)" : "re-query (keys/query)"}` +
        ` — ${reasonsText(trust.reasons)}`
      );
    case "failed":
      return (
        `failed — ${trust.server} could not be reached (${trust.error.code ?? trust.error.name}); ` +
        `retried at ${new Date(trust.nextRetryAt).toLocaleTimeString()} — ${reasonsText(trust.reasons)}`
      );
  }
}

function reasonsText(reasons: readonly DeviceListStaleReason[]): string {
  return reasons.map(reasonText).join("; ");
}

function reasonText(reason: DeviceListStaleReason): string {
  switch (reason.kind) {
    case "reported":
      return reason.note === undefined ? "reported by the app" : `reported: “${reason.note}”`;
    case "unknown_device": {
      const what = [
        reason.deviceId === undefined ? undefined : `device ${reason.deviceId}`,
        reason.senderKey === undefined ? undefined : `key ${reason.senderKey.slice(0, 8)}…`,
      ].filter((w) => w !== undefined);
      return `unknown device: a ${reason.source === "to_device" ? "to-device message" : "room event"} from ${what.join(", ") || "a device"} the list lacks`;
    }
    case "unsigned_devices":
      return `unsigned devices: ${reason.deviceIds.join(", ")}`;
    case "key_query_failed":
      return `keys/query failed for ${reason.server}`;
    case "position_lost":
      return "the sync position was lost";
    case "requested":
      return "a resync was asked for";
  }
}

function sendText(outcome: Outcome | undefined, listed: boolean): string {
  if (outcome === undefined && !listed) return "not in Bob's list: left out of every send";
  return outcomeText(outcome);
}

/** What Bob's server does with Dave's list on this profile, in a sentence. */
function describeServer(name: ProfileName, profile: Profile): string {
  const mode = profile.remoteDeviceLists;
  const serves =
    mode === "federation"
      ? `asks ${REMOTE_SERVER} at every keys/query, so a re-query gets Dave's true list`
      : `answers Bob's keys/query for Dave from its copy of his list${mode === "msc" ? " (and says when its last resync failed)" : ""}, however stale`;
  const refresh = profile.deviceListRefresh
    ? "it offers MSC2638, so Bob's client can ask it to refresh that copy (cleared: server and client)"
    : "it has no MSC2638 refresh, so Bob's client can only ask again (cleared: client only)";
  return `${name}: Bob's server ${serves}; ${refresh}.`;
}

function count(n: number, what: string): string {
  return `${n} ${what}${n === 1 || what.startsWith("m.") ? "" : "s"}`;
}
