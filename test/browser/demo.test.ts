import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DemoServer, startDemoServer } from "../../demo/server.js";
import { DEHYDRATION_KEY_SECRET_NAMES } from "../../src/dehydration/device/names.js";
import { CROSS_SIGNING_SECRET_NAMES } from "../../src/secret-storage/cross-signing-secrets.js";
import { encodeRecoveryKey } from "../../src/secret-storage/recovery-key.js";
import { SecretStorage } from "../../src/secret-storage/secret-storage.js";
import { DEHYDRATED_DEVICE_PATH } from "../../src/testing/routes/dehydration-gate.js";
import { useBrowserSuite } from "./support/browser-suite.js";

/**
 * `npm run demo` in a real Chromium: the demo's own Vite set-up serves it, the test clicks through
 * every step as a developer would, and checks what the page shows — Bob's messages decrypted on
 * Alice's new device, the drain's live progress, a failed step's error, a retried step resuming on
 * the same device, a phone-width layout, a remote friend's new device that a stale device list
 * leaves out unless the SDK can repair the list — and what it must not show: no key, recovery key
 * or token, and no ✓ for a device that did not get the room key.
 *
 * Set `DEMO_SCREENSHOT=/path/to/file.png` to keep a screenshot of the finished flow; the runs with a
 * rogue device and card 5's keep theirs beside it (`file-rogue.png`, `file-rogue-phone.png`,
 * `file-remote-friend.png`, `file-remote-friend-phone.png`).
 */

const browser = useBrowserSuite();
const ALICE = "@alice:localhost";
const STEP_TIMEOUT_MS = 90_000;
/** The viewport of the runs at phone width. */
const PHONE = { width: 390, height: 844 };
/** How the mock issues access and refresh tokens (`src/testing/random-ids.ts`). */
const TOKEN_PATTERN = /mockr?_[A-Za-z0-9]{32}/;

let demo: DemoServer;

beforeAll(async () => {
  demo = await startDemoServer({ port: 0, live: false });
});

afterAll(async () => {
  await demo?.close();
});

interface OpenDemo {
  page: Page;
  problems: string[];
}

async function openDemo(): Promise<OpenDemo> {
  const page = await browser.context.newPage();
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(`uncaught ${error.name}: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console.error: ${message.text()}`);
  });
  await page.goto(demo.url);
  await page.waitForSelector("body[data-ready='true']", { timeout: 60_000 });
  return { page, problems };
}

/**
 * A test on a fresh page of the demo, which must see no uncaught error and no `console.error` by
 * its end; the page is closed then.
 */
function itOnDemo(name: string, run: (page: Page) => Promise<void>): void {
  it(
    name,
    async () => {
      const { page, problems } = await openDemo();
      await run(page);
      expect(problems).toEqual([]);
      await page.close();
    },
    4 * STEP_TIMEOUT_MS,
  );
}

/** The recovery key step 1 shows. */
async function recoveryKeyShown(page: Page): Promise<string> {
  return ((await page.locator("#recovery-key").textContent()) ?? "").trim();
}

/** One line per entry, as the panel shows them. */
async function logText(page: Page): Promise<string> {
  return (await page.locator("#log li").allTextContents()).join("\n");
}

/** Clicks a step's button and waits until it is done or failed. */
async function clickStep(page: Page, step: number): Promise<string | null> {
  await page.click(`button[data-step="${step}"]`);
  await page.waitForSelector(`#step-${step}:is([data-state="done"], [data-state="failed"])`, {
    timeout: STEP_TIMEOUT_MS,
  });
  return page.locator(`#step-${step}`).getAttribute("data-state");
}

/** Clicks a step until it is done (a failed step resumes when clicked again); returns the failures. */
async function runStepUntilDone(page: Page, step: number, maxAttempts: number): Promise<number> {
  for (let failures = 0; failures < maxAttempts; failures++) {
    if ((await clickStep(page, step)) === "done") return failures;
  }
  throw new Error(`step ${step} failed ${maxAttempts} times; the log says:\n${await logText(page)}`);
}

async function setKnob(page: Page, id: string, value: string): Promise<void> {
  await page.locator(id).fill(value);
  await page.locator(id).dispatchEvent("change");
}

/** A step that must succeed; a failure fails the test with the log. */
async function runStep(page: Page, step: number): Promise<void> {
  const state = await clickStep(page, step);
  if (state !== "done") throw new Error(`step ${step} ended ${state}; the log says:\n${await logText(page)}`);
}

type Secret = { what: string; value: string };

/** Every secret of Alice's account the page could leak: from secret storage, opened in Node. */
async function aliceSecrets(page: Page, recoveryKey: string): Promise<Secret[]> {
  const accountData = await page.evaluate(
    (userId) => Object.fromEntries(window.demo!.homeserver.state.accountData.all(userId)),
    ALICE,
  );
  const storage = new SecretStorage({
    get: async (type) => accountData[type],
    set: async () => {
      throw new Error("read only");
    },
  });
  const key = await storage.unlockWithRecoveryKey(recoveryKey);
  const names = [
    ...Object.values(CROSS_SIGNING_SECRET_NAMES),
    ...Object.values(DEHYDRATION_KEY_SECRET_NAMES),
  ];
  const secrets: Secret[] = [];
  for (const name of names) {
    const value = await storage.get(name, key);
    expect(value, `secret storage holds ${name}`).toBeDefined();
    secrets.push({ what: `the secret ${name}`, value: value! });
  }
  const keyBase64 = Buffer.from(key.key).toString("base64");
  return [
    ...recoveryKeyForms("the recovery key", recoveryKey),
    { what: "the secret-storage key", value: keyBase64 },
    { what: "the secret-storage key", value: keyBase64.replace(/=+$/, "") },
    ...secrets,
  ];
}

/**
 * No secret in `log`, nor in the text of the page's `root` element, but for the recovery key, whose
 * own element shows it on purpose.
 */
async function expectNoSecretInLogOrPage(
  page: Page,
  log: string,
  secrets: readonly Secret[],
  root = "main",
): Promise<void> {
  expectNoSecret(log, secrets, "the log");
  expectNoSecret(
    (await page.locator(root).textContent()) ?? "",
    secrets.filter((s) => s.what !== "the recovery key"),
    "the page",
  );
}

function recoveryKeyForms(what: string, key: string): Secret[] {
  return [
    { what, value: key },
    { what, value: key.replaceAll(" ", "") },
  ];
}

/** Fails naming the kind of secret found, never echoing it (or the text around it). */
function expectNoSecret(text: string, secrets: readonly Secret[], where: string): void {
  for (const { what, value } of secrets)
    expect(text.includes(value), `${what} appears in ${where}`).toBe(false);
  expect(TOKEN_PATTERN.test(text), `an access or refresh token appears in ${where}`).toBe(false);
}

async function messages(page: Page): Promise<{ room: string; body: string; decrypted: boolean }[]> {
  return page.locator("#messages li").evaluateAll((items) =>
    items.map((li) => ({
      room: li.querySelector(".room")?.textContent ?? "",
      body: li.querySelector(".body")?.textContent ?? "",
      decrypted: li.classList.contains("decrypted"),
    })),
  );
}

/** The error a failed step shows in its card, one line per paragraph ("" when none is shown). */
async function stepError(page: Page, step: number): Promise<string> {
  const box = page.locator(`#step-${step} [data-testid="step-error"]`);
  return (await box.isVisible()) ? (await box.locator("p").allTextContents()).join("\n") : "";
}

/** The new login's device id, on step 4's card from the moment the login exists. */
async function newDeviceId(page: Page): Promise<string | undefined> {
  return (await page.locator("#step-4").getAttribute("data-device-id")) ?? undefined;
}

/** The devices the server lists for Alice (her first one, the dehydrated one, each new login). */
async function aliceDevices(page: Page): Promise<string[]> {
  return page.evaluate(
    (userId) => window.demo!.homeserver.state.accounts.devices(userId).map((d) => d.deviceId),
    ALICE,
  );
}

/** Records every value the drain-progress element shows, from now on (read with `drainProgressSeen`). */
async function recordDrainProgress(page: Page): Promise<void> {
  await page.evaluate(() => {
    const box = document.querySelector<HTMLElement>('[data-testid="drain-progress"]')!;
    const seen: { pages: number; events: number; roomKeys: number; visible: boolean }[] = [];
    (window as unknown as { drainProgressSeen: typeof seen }).drainProgressSeen = seen;
    const read = (field: string) => Number(box.querySelector(`[data-field="${field}"]`)?.textContent ?? 0);
    new MutationObserver(() =>
      seen.push({
        pages: read("pages"),
        events: read("events"),
        roomKeys: read("roomKeys"),
        visible: !box.hidden,
      }),
    ).observe(box, { subtree: true, childList: true, characterData: true, attributes: true });
  });
}

async function drainProgressSeen(page: Page) {
  return page.evaluate(
    () =>
      (
        window as unknown as {
          drainProgressSeen: { pages: number; events: number; roomKeys: number; visible: boolean }[];
        }
      ).drainProgressSeen,
  );
}

async function expectFitsPhoneWidth(page: Page, when: string): Promise<void> {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width, `page width at ${PHONE.width} px ${when}`).toBeLessThanOrEqual(PHONE.width);
}

/** Clicks one of the recipients card's buttons and waits until its action is done or failed. */
async function clickAction(page: Page, button: string): Promise<void> {
  await page.click(button);
  await page.waitForSelector('#recipients:is([data-action="done"], [data-action="failed"])', {
    timeout: STEP_TIMEOUT_MS,
  });
  const state = await page.locator("#recipients").getAttribute("data-action");
  if (state !== "done") {
    throw new Error(`${button} ended ${state}; the log says:\n${await logText(page)}`);
  }
}

interface DeviceRow {
  deviceId: string;
  /** The demo's role for it: `first`, `dehydrated`, `rogue`, `other`. */
  kind: string;
  /** MSC3814's display: `offline_device` or `device`. */
  display: string;
  label: string;
  dehydrated: string;
  crossSigned: string;
  verified: string;
  outcome: string;
  tally: string;
}

/** The rows of Alice's device table, as the page shows them. */
async function deviceTable(page: Page): Promise<DeviceRow[]> {
  return page.locator(`#device-tables [data-user-id="${ALICE}"] tbody tr`).evaluateAll((rows) =>
    rows.map((tr) => {
      const cell = (col: string) => tr.querySelector(`[data-col="${col}"]`);
      const text = (selector: string) => tr.querySelector(selector)?.textContent ?? "";
      const row = tr as HTMLElement;
      return {
        deviceId: row.dataset.deviceId ?? "",
        kind: row.dataset.kind ?? "",
        display: row.dataset.display ?? "",
        label: text(".device-label"),
        dehydrated: cell("dehydrated")?.textContent ?? "",
        crossSigned: cell("cross-signed")?.textContent ?? "",
        verified: cell("verified")?.textContent ?? "",
        outcome: text(".outcome-text"),
        tally: text(".outcome-tally"),
      };
    }),
  );
}

function rowOf(rows: readonly DeviceRow[], kind: string): DeviceRow {
  const row = rows.find((r) => r.kind === kind);
  if (row === undefined) throw new Error(`no ${kind} row in ${JSON.stringify(rows)}`);
  return row;
}

/** What the server holds for a device of Alice's, counted in Node from the mock's control API. */
async function inboxTypes(page: Page, deviceId: string): Promise<Record<string, number>> {
  return page.evaluate(
    ({ userId, deviceId }) => {
      const counts: Record<string, number> = {};
      for (const e of window.demo!.homeserver.control.toDeviceInbox(userId, deviceId).events)
        counts[e.type] = (counts[e.type] ?? 0) + 1;
      return counts;
    },
    { userId: ALICE, deviceId },
  );
}

/** With `DEMO_SCREENSHOT` set: the full page, at that path or beside it with `-<suffix>`. */
async function keepScreenshot(page: Page, suffix?: string): Promise<void> {
  const path = process.env.DEMO_SCREENSHOT;
  if (!path) return;
  const named = suffix === undefined ? path : path.replace(/(\.png)?$/, `-${suffix}.png`);
  await page.screenshot({ path: named, fullPage: true });
}

/** Clicks one of card 5's buttons and waits until its action is done; a failure fails the test with the log. */
async function clickRemoteFriend(page: Page, button: string): Promise<void> {
  await page.click(button);
  await page.waitForSelector('#step-5:is([data-action="done"], [data-action="failed"])', {
    timeout: STEP_TIMEOUT_MS,
  });
  const state = await page.locator("#step-5").getAttribute("data-action");
  if (state !== "done") {
    throw new Error(`${button} ended ${state}; the log says:\n${await logText(page)}`);
  }
}

interface DaveRow {
  deviceId: string;
  /** `first`, `new` (the one logged in while updates were lost) or `other`. */
  kind: string;
  listed: string;
  /** The latest send's outcome for it: `shared`, `withheld`, `unchanged` or `none`. */
  outcome: string;
  outcomeText: string;
  /** `m.room.encrypted` from Bob in its inbox, as the card counted them. */
  inbox: string;
  inboxText: string;
  text: string;
}

/** The rows of card 5's table of Dave's devices. */
async function daveTable(page: Page): Promise<DaveRow[]> {
  return page.locator("#dave-devices tbody tr").evaluateAll((rows) =>
    rows.map((tr) => {
      const row = tr as HTMLElement;
      const cell = (col: string) => tr.querySelector(`[data-col="${col}"]`)?.textContent ?? "";
      return {
        deviceId: row.dataset.deviceId ?? "",
        kind: row.dataset.kind ?? "",
        listed: row.dataset.listed ?? "",
        outcome: row.dataset.outcome ?? "",
        outcomeText: cell("outcome"),
        inbox: row.dataset.inbox ?? "",
        inboxText: cell("inbox"),
        text: row.textContent ?? "",
      };
    }),
  );
}

/** Card 5's trust line and the history of `deviceLists.trustChanged` it showed. */
async function daveTrust(page: Page) {
  const line = page.locator('[data-testid="dave-trust"]');
  return {
    state: await line.getAttribute("data-state"),
    cleared: await line.getAttribute("data-cleared"),
    text: (await line.textContent()) ?? "",
    history: await page.locator("#dave-trust-history li").evaluateAll((items) =>
      items.map((li) => ({
        state: (li as HTMLElement).dataset.state ?? "",
        via: (li as HTMLElement).dataset.via,
        cleared: (li as HTMLElement).dataset.cleared,
        text: li.textContent ?? "",
      })),
    ),
  };
}

const DAVE = "@dave:remote.example";

/** What Dave's device holds on the server, from Bob, counted from the mock's control API. */
async function daveInboxFromBob(page: Page, deviceId: string): Promise<Record<string, number>> {
  return page.evaluate(
    ({ userId, deviceId }) => {
      const counts: Record<string, number> = {};
      for (const e of window.demo!.homeserver.control.toDeviceInbox(userId, deviceId).events)
        if (e.sender === "@bob:localhost") counts[e.type] = (counts[e.type] ?? 0) + 1;
      return counts;
    },
    { userId: DAVE, deviceId },
  );
}

/**
 * Card 5 up to the point where Dave's list is stale: Dave joins, Bob writes (Dave's first device
 * gets the key), Dave logs in a new phone while his list's updates are lost. Returns the new
 * device's id.
 */
async function daveWithStaleNewDevice(page: Page): Promise<string> {
  await clickRemoteFriend(page, "#dave-joins");
  const [first] = await daveTable(page);
  expect(first).toMatchObject({ kind: "first", listed: "true", outcome: "shared", inbox: "1" });
  expect((await daveTrust(page)).state).toBe("unknown");

  await clickRemoteFriend(page, "#dave-new-device");
  const rows = await daveTable(page);
  const fresh = rowOfDave(rows, "new");
  // Bob's client does not list it, and the server's copy lacks it too.
  expect(fresh).toMatchObject({ listed: "false", outcome: "none", inbox: "0" });
  expect(rowOfDave(rows, "first").listed).toBe("true");
  const copy = page.locator('[data-testid="dave-server-copy"]');
  expect(await copy.getAttribute("data-stale")).toBe("true");
  expect(await copy.textContent()).toMatch(
    /copy of Dave's list: 1 device .*lists 2 devices .*the copy is stale/,
  );
  expect(
    await page.evaluate((userId) => window.demo!.homeserver.control.remoteCache(userId), DAVE),
  ).toMatchObject({ stale: true, losingUpdates: true });
  return fresh.deviceId;
}

function rowOfDave(rows: readonly DaveRow[], kind: string): DaveRow {
  const row = rows.find((r) => r.kind === kind);
  if (row === undefined) throw new Error(`no ${kind} row in ${JSON.stringify(rows)}`);
  return row;
}

async function drainStats(page: Page): Promise<Record<string, string>> {
  return page.locator("#drain-stats").evaluate((dl) => {
    const out: Record<string, string> = {};
    for (const dt of dl.querySelectorAll("dt")) {
      const dd = dt.nextElementSibling;
      if (dd) out[dt.textContent ?? ""] = dd.textContent ?? "";
    }
    return out;
  });
}

describe("the demo", () => {
  itOnDemo(
    "walks through every step and shows Bob's messages decrypted on Alice's new device, with no secret in the log",
    async (page) => {
      // Latency on every request, and two 429s for the drain: the SDK's retries must carry it through.
      await setKnob(page, "#latency", "20");

      await runStep(page, 1);
      const recoveryKey = await recoveryKeyShown(page);
      expect(recoveryKey).toMatch(/^(\S{4} ){11}\S{4}$/);
      await runStep(page, 2);
      await runStep(page, 3);
      // With one dehydrated device, it is Alice's "Offline device"; both of hers got every room key.
      const table = await deviceTable(page);
      expect(table.map((r) => r.kind).sort()).toEqual(["dehydrated", "first"]);
      expect(rowOf(table, "dehydrated")).toMatchObject({
        display: "offline_device",
        label: "Offline device",
        dehydrated: "✓",
        crossSigned: "✓",
        verified: "–",
        outcome: "got the room key",
        tally: "got it in 3 of 3 rooms",
      });
      expect(rowOf(table, "first")).toMatchObject({ dehydrated: "–", outcome: "got the room key" });
      expect(await page.locator("#rogue-inbox").isVisible()).toBe(false);
      await page.click("#fail-events");

      // A well-formed key for another secret-storage key is refused, and not echoed in the log.
      const wrongKey = encodeRecoveryKey(globalThis.crypto.getRandomValues(new Uint8Array(32)));
      await page.locator("#recovery-key-input").fill(wrongKey);
      expect(await clickStep(page, 4)).toBe("failed");
      expect(await logText(page)).toMatch(/step 4 failed: SecretStorageError/);
      // The card says why, not only its border.
      expect(await stepError(page, 4)).toMatch(/Failed: bad_key /);
      const deviceOfFirstAttempt = await newDeviceId(page);
      expect(deviceOfFirstAttempt).toBeDefined();

      // Typed in by the user, as an app would ask for it; the retry resumes on the same login.
      await page.locator("#recovery-key-input").fill(recoveryKey);
      await runStep(page, 4);
      expect(await stepError(page, 4)).toBe("");
      expect(await newDeviceId(page)).toBe(deviceOfFirstAttempt);

      const shown = await messages(page);
      expect(shown).toHaveLength(6);
      expect(shown.every((m) => m.decrypted)).toBe(true);
      expect(shown.map((m) => m.body)).toEqual(
        expect.arrayContaining([
          "Noodles at 12:30?",
          "The release candidate is tagged.",
          "Meet at the station at 8.",
        ]),
      );
      expect(new Set(shown.map((m) => m.room))).toEqual(
        new Set(["Lunch plans", "Release 2.0", "Weekend hike"]),
      );
      const stats = await drainStats(page);
      expect(stats["New device"]).toBe(`${deviceOfFirstAttempt} (the same over 2 attempts)`);
      // What a user counts: one room key per room, in as many to-device messages as waited for it.
      expect(stats["Waiting for it after Bob wrote"]).toBe("3 to-device messages");
      expect(stats["Drained from its inbox"]).toMatch(/^3 to-device messages in \d+ pages?$/);
      expect(stats["Room keys received"]).toBe("3");
      expect(stats["Key requests sent"]).toMatch(/^none/);
      expect(stats["Bob sent"]).toBe("6 messages in 3 rooms");
      expect(stats["Readable before the drain"]).toBe("0 of 6 messages");
      expect(stats["Readable after the drain"]).toBe("6 of 6 messages");
      expect(await page.locator('[data-testid="step-timings"]').textContent()).toMatch(
        /signing in [\d.]+ s · joining rooms [\d.]+ s · .*drain [\d.]+ s · decrypting [\d.]+ s/,
      );

      const log = await logText(page);
      expect(log).toContain("room key shared with 2 of Alice's devices");
      expect(log).toMatch(/dehydrated_device\/\S+\/events → 429 M_LIMIT_EXCEEDED; retry #1/);
      expect(log).toContain("drain completed: ");
      // The SDK's own logger lines (hidden by default) are in the panel too, and were checked below.
      expect(log).toMatch(/Alice \(new\) · logger\.warn · .*429/);
      const secrets = [
        ...(await aliceSecrets(page, recoveryKey)),
        ...recoveryKeyForms("the wrong recovery key", wrongKey),
      ];
      // The whole page here, not only its `main`.
      await expectNoSecretInLogOrPage(page, log, secrets, "body");

      await keepScreenshot(page);
    },
  );

  itOnDemo(
    "plays tuwunel after a profile switch: the legacy POST variant drains 60 room keys over several pages",
    async (page) => {
      await page.selectOption("#profile", "tuwunel");
      await expect.poll(() => page.locator("#profile-summary").textContent()).toContain("POST {next_batch}");
      expect(await logText(page)).toContain("embedded homeserver started as tuwunel");

      await runStep(page, 1);
      const recoveryKey = await recoveryKeyShown(page);
      await runStep(page, 2);
      await page.locator("#room-count").fill("60");
      await runStep(page, 3);
      await page.click("#paste-key");
      await runStep(page, 4);

      const stats = await drainStats(page);
      expect(stats["Room keys received"]).toBe("60");
      // tuwunel serves pages of 50: 60 messages cannot come in one. And only Bob's 60: the new login
      // sent no key requests of its own (they would land in this inbox too).
      expect(stats["Drained from its inbox"]).toMatch(/^60 to-device messages in [2-9] pages$/);
      expect(stats["Key requests sent"]).toMatch(/^none/);
      expect(stats["Readable after the drain"]).toBe("120 of 120 messages");
      const shown = await messages(page);
      expect(shown).toHaveLength(120);
      expect(shown.filter((m) => m.decrypted)).toHaveLength(120);

      const log = await logText(page);
      expect(log).toMatch(/page 2: \d+ to-device messages/);
      expect(log).toContain("in 60 rooms: joined 60 now, 8 at a time");
      expectNoSecret(log, await aliceSecrets(page, recoveryKey), "the log");
    },
  );

  itOnDemo(
    "rides out random 500s and 429s on synapse-1.156 at phone width: a failed step shows its error and resumes on the same device until every message decrypts",
    async (page) => {
      await page.setViewportSize(PHONE);
      await page.selectOption("#profile", "synapse-1.156");
      await setKnob(page, "#error-rate", "10");
      await setKnob(page, "#rate-limit", "5");

      let failures = await runStepUntilDone(page, 1, 5);
      const recoveryKey = await recoveryKeyShown(page);
      for (const step of [2, 3]) failures += await runStepUntilDone(page, step, 5);
      await page.click("#paste-key");
      const devicesBefore = await aliceDevices(page);

      // On top of the random faults, two failures step 4 cannot ride out, through the mock's control
      // API: one room refuses the join (403 is final), then the dehydrated device's inbox answers 429
      // more often than the SDK retries. So the first attempt with a login fails among the joins,
      // the next one in the drain, and only a real resume gets every message decrypted.
      await page.evaluate((eventsPath) => {
        const control = window.demo!.homeserver.control;
        control.scriptFailure({
          method: "POST",
          path: "/_matrix/client/v3/join/{roomId}",
          status: 403,
          errcode: "M_FORBIDDEN",
          error: "You are not invited to this room (scripted by the test)",
        });
        control.scriptFailure({ path: eventsPath, times: 5, status: 429, retryAfterMs: 50 });
      }, `${DEHYDRATED_DEVICE_PATH}/{deviceId}/events`);
      await recordDrainProgress(page);

      const attempts: { state: string | null; deviceId: string | undefined; error: string }[] = [];
      while (attempts.at(-1)?.state !== "done") {
        if (attempts.length === 8)
          throw new Error(`step 4 never succeeded; the log says:\n${await logText(page)}`);
        const state = await clickStep(page, 4);
        attempts.push({ state, deviceId: await newDeviceId(page), error: await stepError(page, 4) });
        if (state === "failed") {
          // The card shows the code and message, as the log does.
          expect(attempts.at(-1)!.error).toMatch(/^Failed: \S+/);
          await expectFitsPhoneWidth(page, "with a step's error shown");
        }
      }
      const failed = attempts.filter((a) => a.state === "failed");
      failures += failed.length;
      expect(failed.length).toBeGreaterThanOrEqual(2);
      const errors = failed.map((a) => a.error).join("\n");
      expect(errors).toMatch(
        /Failed: M_FORBIDDEN · HTTP 403 POST join\/\S+ → 403 M_FORBIDDEN: You are not invited/,
      );
      expect(errors).toMatch(
        /Failed: fetch_failed .*\s+caused by: matrix_api_error · M_LIMIT_EXCEEDED · HTTP 429/,
      );
      expect(await stepError(page, 4)).toBe("");

      // One login for every attempt: the device of the first attempt that signed in, and no other.
      const devices = attempts.map((a) => a.deviceId).filter((id) => id !== undefined);
      expect(devices.length).toBeGreaterThan(0);
      expect(new Set(devices)).toEqual(new Set([devices[0]]));
      const devicesAfter = await aliceDevices(page);
      expect(devicesAfter.filter((id) => !devicesBefore.includes(id))).toEqual([devices[0]]);

      // Every message Bob sent, decrypted: the count on the card is his, and not zero.
      const stats = await drainStats(page);
      const [, sent] = /^(\d+) messages in 3 rooms$/.exec(stats["Bob sent"] ?? "") ?? [];
      expect(Number(sent)).toBe(6);
      expect(stats["Readable after the drain"]).toBe(`${sent} of ${sent} messages`);
      expect(stats["New device"]).toBe(`${devices[0]} (the same over ${attempts.length} attempts)`);
      const shown = await messages(page);
      expect(shown).toHaveLength(Number(sent));
      expect(shown.every((m) => m.decrypted)).toBe(true);

      // The progress element showed pages, to-device messages and room keys while the drain ran.
      const seen = await drainProgressSeen(page);
      expect(seen.some((p) => p.visible && p.pages > 0 && p.events > 0 && p.roomKeys > 0)).toBe(true);
      expect(seen.at(-1)).toMatchObject({ visible: true, roomKeys: 3 });
      await expectFitsPhoneWidth(page, "with the results shown");

      const serverStats = (await page.locator("#server-stats").textContent()) ?? "";
      const [, faults, retries] = /(\d+) faults injected · (\d+) retries/.exec(serverStats) ?? [];
      expect(Number(faults)).toBeGreaterThan(0);
      expect(Number(retries)).toBeGreaterThan(0);
      const log = await logText(page);
      // Every failure the SDK did not absorb is in the log, with the hint to resume.
      expect(log.match(/click step \d again to resume/g) ?? []).toHaveLength(failures);
      expect(log).toContain(`resuming on the same device ${devices[0]}`);
      await expectNoSecretInLogOrPage(page, log, await aliceSecrets(page, recoveryKey));
    },
  );
  itOnDemo(
    "refuses a rogue dehydrated device the server injects before Bob writes: the table shows it withheld, its inbox gets no room key, and Alice's new device still decrypts everything",
    async (page) => {
      await runStep(page, 1);
      const recoveryKey = await recoveryKeyShown(page);
      expect(await page.locator("#inject-rogue").isDisabled()).toBe(true);
      await runStep(page, 2);

      await clickAction(page, "#inject-rogue");
      expect(await page.locator("#inject-rogue").isDisabled()).toBe(true);
      expect(await page.locator('[data-testid="rogue-inbox"]').textContent()).toBe(
        "Server side: rogue device inbox: 0 room keys, 0 withheld notices",
      );
      const devicesOnServer = await aliceDevices(page);
      await runStep(page, 3);

      const table = await deviceTable(page);
      expect(table.map((r) => r.kind).sort()).toEqual(["dehydrated", "first", "rogue"]);
      const real = rowOf(table, "dehydrated");
      const rogue = rowOf(table, "rogue");
      expect(devicesOnServer).toContain(rogue.deviceId);
      expect(real).toMatchObject({
        dehydrated: "✓",
        crossSigned: "✓",
        outcome: "got the room key",
        tally: "got it in 3 of 3 rooms",
      });
      expect(rogue).toMatchObject({
        dehydrated: "✓",
        crossSigned: "–",
        verified: "–",
        tally: "got it in 0 of 3 rooms",
      });
      expect(rogue.outcome).toMatch(/^withheld: m\.unverified — .*did not cross-sign/);
      // Two devices flagged dehydrated: MSC3814 shows both as ordinary devices, neither as "Offline device".
      for (const row of [real, rogue])
        expect(row).toMatchObject({ display: "device", label: "Dehydrated device" });
      expect(rowOf(table, "first").outcome).toBe("got the room key");

      // The server's side: only withheld notices reached the rogue device, one per room.
      expect(await page.locator('[data-testid="rogue-inbox"]').textContent()).toBe(
        "Server side: rogue device inbox: 0 room keys, 3 withheld notices (m.unverified)",
      );
      expect(await inboxTypes(page, rogue.deviceId)).toEqual({ "m.room_key.withheld": 3 });
      expect(await inboxTypes(page, real.deviceId)).toEqual({ "m.room.encrypted": 3 });

      // Bob writes once more: the rogue device is still refused.
      await clickAction(page, "#bob-sends-more");
      const after = await deviceTable(page);
      expect(rowOf(after, "rogue").outcome).toMatch(/^withheld: m\.unverified/);
      expect(rowOf(after, "dehydrated").outcome).toBe("got the room key");
      expect(await inboxTypes(page, rogue.deviceId)).toEqual({ "m.room_key.withheld": 3 });

      await page.click("#paste-key");
      await runStep(page, 4);
      const stats = await drainStats(page);
      expect(stats["Dehydrated device"]).toBe(real.deviceId);
      expect(stats["Bob sent"]).toBe("7 messages in 3 rooms");
      expect(stats["Room keys received"]).toBe("3");
      expect(stats["Readable after the drain"]).toBe("7 of 7 messages");
      const shown = await messages(page);
      expect(shown).toHaveLength(7);
      expect(shown.every((m) => m.decrypted)).toBe(true);

      const log = await logText(page);
      expect(log).toMatch(
        /room key shared with 2 of Alice's devices \[[^\]]*\]; withheld from 1 \[\S+ \(rogue\): m\.unverified\]/,
      );
      expect(log).toContain("more than one of Alice's devices says it is dehydrated");
      await expectNoSecretInLogOrPage(page, log, await aliceSecrets(page, recoveryKey));
      await keepScreenshot(page, "rogue");
    },
  );

  itOnDemo(
    "refuses a rogue dehydrated device injected after Bob wrote, on his next message, at phone width",
    async (page) => {
      await page.setViewportSize(PHONE);
      await runStep(page, 1);
      const recoveryKey = await recoveryKeyShown(page);
      await runStep(page, 2);
      await page.locator("#room-count").fill("1");
      await runStep(page, 3);
      expect(rowOf(await deviceTable(page), "dehydrated")).toMatchObject({ label: "Offline device" });

      // Bob's client is still open: after the injection his app syncs, and the table lists the new device.
      await clickAction(page, "#inject-rogue");
      const seen = await deviceTable(page);
      expect(rowOf(seen, "rogue")).toMatchObject({
        crossSigned: "–",
        outcome: "no message sent since Bob's client saw it",
      });
      expect(rowOf(seen, "dehydrated")).toMatchObject({ display: "device", label: "Dehydrated device" });
      await expectFitsPhoneWidth(page, "with the device table shown");

      await clickAction(page, "#bob-sends-more");
      const after = await deviceTable(page);
      expect(rowOf(after, "rogue").outcome).toMatch(/^withheld: m\.unverified — /);
      // Same room, same session: Alice's own devices had the key from step 3.
      expect(rowOf(after, "dehydrated")).toMatchObject({
        outcome: "got the room key",
        tally: "got it in 1 of 1 room",
      });
      expect(await page.locator('[data-testid="rogue-inbox"]').textContent()).toBe(
        "Server side: rogue device inbox: 0 room keys, 1 withheld notice (m.unverified)",
      );
      expect(await inboxTypes(page, rowOf(after, "rogue").deviceId)).toEqual({ "m.room_key.withheld": 1 });
      await expectFitsPhoneWidth(page, "after Bob's next message");
      const secrets = await aliceSecrets(page, recoveryKey);
      await expectNoSecretInLogOrPage(page, await logText(page), secrets);
      await keepScreenshot(page, "rogue-phone");
    },
  );
  itOnDemo(
    "card 5 on msc: Dave's new device, missed by a lost update, is reported, refreshed by MSC2638 (server and client) and gets the room key",
    async (page) => {
      await page.selectOption("#profile", "msc");
      await expect
        .poll(() => page.locator("#remote-profile").textContent())
        .toMatch(/^msc: .*offers MSC2638/);
      const newDevice = await daveWithStaleNewDevice(page);

      await clickRemoteFriend(page, "#dave-says");
      const trust = await daveTrust(page);
      expect(trust).toMatchObject({ state: "fresh", cleared: "server_and_client" });
      expect(trust.text).toContain("fresh — cleared: server and client");
      expect(trust.history.map((t) => t.state)).toEqual(["stale", "refreshing", "fresh"]);
      expect(trust.history[0]!.text).toContain("reported: “Dave says he has a new phone”");
      expect(trust.history[1]!.via).toBe("msc2638");
      expect(trust.history[2]!.cleared).toBe("server_and_client");
      // Bob's client lists the new device now, and the server's copy is repaired.
      expect(rowOfDave(await daveTable(page), "new")).toMatchObject({ listed: "true", outcome: "none" });
      expect(await page.locator('[data-testid="dave-server-copy"]').getAttribute("data-stale")).toBe("false");
      const refreshes = await page.evaluate(() =>
        window
          .demo!.homeserver.control.requestLog()
          .filter((e) => e.method === "POST" && /\/user\/[^/]+\/devices\/refresh$/.test(e.path)),
      );
      expect(refreshes.map((e) => e.status)).toEqual([202]);

      await clickRemoteFriend(page, "#bob-writes-dave");
      const rows = await daveTable(page);
      expect(rowOfDave(rows, "new")).toMatchObject({
        deviceId: newDevice,
        listed: "true",
        outcome: "shared",
        outcomeText: "got the room key",
        inbox: "1",
        inboxText: "✓ 1 m.room.encrypted",
      });
      // `applied` covers the room's whole session: the first device got its key with Bob's first
      // message, and its inbox holds that one only.
      expect(rowOfDave(rows, "first")).toMatchObject({ outcome: "shared", inbox: "1" });
      const verdict = page.locator('[data-testid="dave-new-device-outcome"]');
      expect(await verdict.getAttribute("data-got")).toBe("true");
      expect(await verdict.textContent()).toMatch(
        /^✓ Dave's new phone \S+ got the room key: Bob's send shared it/,
      );
      // The server's side agrees: a room key (Olm-encrypted) from Bob waits for the new device.
      expect(await daveInboxFromBob(page, newDevice)).toEqual({ "m.room.encrypted": 1 });
      expect(await page.locator("#step-5").getAttribute("data-state")).toBe("done");

      const log = await logText(page);
      expect(log).toContain("deviceLists.trustChanged: Dave's list is refreshing via MSC2638");
      expect(log).toContain(`Dave's new phone ${newDevice} holds 1 m.room.encrypted from Bob`);
      await expectNoSecretInLogOrPage(page, log, [], "body");
      await keepScreenshot(page, "remote-friend");
    },
  );

  itOnDemo(
    "card 5 on synapse-1.157 at phone width: the re-query is answered from the stale copy, the trust says client only, and the new device is never shown as having the key",
    async (page) => {
      await page.setViewportSize(PHONE);
      expect(await page.locator("#profile").inputValue()).toBe("synapse-1.157");
      expect(await page.locator("#remote-profile").textContent()).toMatch(/^synapse-1\.157: .*no MSC2638/);
      const newDevice = await daveWithStaleNewDevice(page);

      await clickRemoteFriend(page, "#dave-says");
      await clickRemoteFriend(page, "#bob-writes-dave");
      const trust = await daveTrust(page);
      // Whatever the SDK reports, the card shows it; here a re-query, and honestly client only.
      expect(trust).toMatchObject({ state: "fresh", cleared: "client_only" });
      expect(trust.text).toContain("client only — the server's copy may still be stale");
      expect(trust.history.map((t) => t.state)).toEqual(["stale", "refreshing", "fresh"]);
      expect(trust.history[1]!.via).toBe("requery");

      const fresh = rowOfDave(await daveTable(page), "new");
      expect(fresh).toMatchObject({ deviceId: newDevice, listed: "false", outcome: "none", inbox: "0" });
      expect(fresh.inboxText).toBe("✗ none");
      expect(fresh.text).not.toContain("✓");
      const verdict = page.locator('[data-testid="dave-new-device-outcome"]');
      expect(await verdict.getAttribute("data-got")).toBe("false");
      const said = (await verdict.textContent()) ?? "";
      expect(said).toMatch(/^✗ Dave's new phone \S+ did not get the room key: Bob's client does not list it/);
      expect(said).toContain("client only — the server's copy may still be stale");
      expect(await daveInboxFromBob(page, newDevice)).toEqual({});
      expect(
        await page.evaluate((userId) => window.demo!.homeserver.control.remoteCache(userId), DAVE),
      ).toMatchObject({ stale: true });
      expect(await page.locator("#step-5").getAttribute("data-state")).not.toBe("done");
      await expectFitsPhoneWidth(page, "with card 5 filled in");
      await expectNoSecretInLogOrPage(page, await logText(page), [], "body");
      await keepScreenshot(page, "remote-friend-phone");
    },
  );
});
