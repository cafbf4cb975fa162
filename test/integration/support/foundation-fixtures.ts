import { inspect } from "node:util";
import { afterEach, beforeAll, beforeEach, expect } from "vitest";
import type { CreateE2eeClientOptions, E2eeClientEvents } from "../../../src/client-options.js";
import { loadCryptoWasm } from "../../../src/crypto/load-wasm.js";
import type { UiaCallback } from "../../../src/crypto/user-interactive-auth.js";
import type { EventSubscriber } from "../../../src/events/emitter.js";
import { createMatrixHttp } from "../../../src/http/matrix-http.js";
import { loginResponseSchema } from "../../../src/http/schemas/auth.js";
import type { Logger } from "../../../src/logger.js";
import { type RunningMockServer, startMockServer } from "../../../src/testing/index.js";
import { createTestClient, inClient, type TestClient } from "./client-mode.js";

export interface Account {
  userId: string;
  deviceId: string;
  accessToken: string;
  password: string;
}

/**
 * A logger that keeps every line as the app's sink would render it (nested objects and errors
 * included), plus every error and event payload the test saw, so a test can prove no secret
 * reached any of them.
 */
export class LeakWatch {
  readonly lines: string[] = [];
  readonly errors: unknown[] = [];
  readonly events: { name: string; payload: unknown }[] = [];
  readonly #secrets = new Set<string>();

  readonly logger: Logger = {
    debug: (...args) => this.#line("debug", args),
    info: (...args) => this.#line("info", args),
    warn: (...args) => this.#line("warn", args),
    error: (...args) => this.#line("error", args),
  };

  /** Remembers a value that must never show up; short values would match by accident. */
  secret(value: string | undefined): void {
    if (value === undefined) return;
    expect(value.length).toBeGreaterThanOrEqual(8);
    this.#secrets.add(value);
    // A recovery key is shown in groups of four; a sink might print it either way.
    const compact = value.replace(/\s+/g, "");
    if (compact !== value) this.#secrets.add(compact);
  }

  /**
   * Remembers key bytes in every text form a sink might print them: base64 (both paddings,
   * URL-safe), hex, and the decimal list `String(bytes)` and `[...bytes].join(", ")` give.
   */
  secretBytes(bytes: Uint8Array): void {
    const padded = Buffer.from(bytes).toString("base64");
    this.secret(padded);
    this.secret(padded.replace(/=+$/, ""));
    this.secret(Buffer.from(bytes).toString("base64url"));
    this.secret(Buffer.from(bytes).toString("hex"));
    this.secret([...bytes].join(","));
    this.secret([...bytes].join(", "));
  }

  /**
   * Records every payload of the client's one event stream (`http.*`, `crypto.*`, `dehydration.*`,
   * under those full names) and every error a payload carries.
   */
  watch(client: TestClient): void {
    client.events.onAny((name, payload: unknown) => {
      if (typeof payload === "object" && payload !== null && "error" in payload)
        this.errors.push(payload.error);
      this.events.push({ name, payload });
    });
  }

  /** Keeps every payload `emitter` sends under `names` for the leak check. */
  watchEvents<Events extends { [K in keyof Events]: unknown }>(
    emitter: EventSubscriber<Events>,
    names: readonly (keyof Events & string)[],
  ): void {
    for (const name of names) emitter.on(name, (payload) => this.events.push({ name, payload }));
  }

  /** Awaits a promise that must reject and keeps the error for the leak check. */
  async rejection(promise: Promise<unknown>): Promise<unknown> {
    try {
      await promise;
    } catch (error) {
      this.errors.push(error);
      return error;
    }
    throw new Error("expected the promise to reject");
  }

  expectNoLeaks(): void {
    expect(this.#secrets.size).toBeGreaterThan(0);
    const rendered = [
      ...this.lines,
      ...this.errors.map((e) => `${String(e)}\n${inspect(e, { depth: 10 })}\n${safeJson(e)}`),
      ...this.events.map((e) => `${e.name} ${inspect(e.payload, { depth: 10 })}\n${safeJson(e.payload)}`),
    ];
    for (const secret of this.#secrets) {
      const hits = rendered.filter((text) => text.includes(secret));
      // Report the count only: printing the hit would leak the secret into the test output.
      expect(hits.length, "a secret appeared in a log line, an error or an event").toBe(0);
    }
  }

  #line(level: string, args: unknown[]): void {
    const text = args.map((a) => (typeof a === "string" ? a : inspect(a, { depth: 10 }))).join(" ");
    this.lines.push(`${level} ${text}`);
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? "";
  } catch {
    return "";
  }
}

/** A user with one device, created through the mock's control API (test setup, not under test). */
export function createAccount(server: RunningMockServer, localpart: string): Account {
  const password = `${localpart}-correct-horse`;
  const created = server.homeserver.control.createUser(localpart, { password });
  if (!created) throw new Error(`user ${localpart} exists`);
  return { ...created, password };
}

/** A new device for an existing user, through `POST /login` over the socket. */
export async function loginNewDevice(server: RunningMockServer, account: Account): Promise<Account> {
  const http = createMatrixHttp({ baseUrl: server.url });
  const response = await http.request({
    method: "POST",
    path: "/_matrix/client/v3/login",
    body: {
      type: "m.login.password",
      identifier: { type: "m.id.user", user: account.userId },
      password: account.password,
      initial_device_display_name: "new login",
    },
    schema: loginResponseSchema,
    unauthenticated: true,
  });
  return {
    userId: response.user_id,
    deviceId: response.device_id,
    accessToken: response.access_token,
    password: account.password,
  };
}

/** Answers the server's user-interactive auth with the account password, as an app's dialog would. */
export function passwordAuth(account: Account): UiaCallback {
  return async () => ({
    type: "m.login.password",
    identifier: { type: "m.id.user", user: account.userId },
    password: account.password,
  });
}

/**
 * The facade over the real socket, with the account's password as its UIA answer: in the test's
 * thread, or in a worker in the `worker` project (`client-mode.ts`).
 */
export async function openTestClient(
  server: RunningMockServer,
  account: Account,
  watch: LeakWatch,
  options: Partial<CreateE2eeClientOptions> = {},
): Promise<TestClient> {
  watch.secret(account.accessToken);
  const client = await createTestClient(clientOptions(server, account, watch, options));
  watch.watch(client);
  return client;
}

function clientOptions(
  server: RunningMockServer,
  account: Account,
  watch: LeakWatch,
  options: Partial<CreateE2eeClientOptions>,
): CreateE2eeClientOptions {
  return {
    baseUrl: server.url,
    userId: account.userId,
    deviceId: account.deviceId,
    accessToken: account.accessToken,
    logger: watch.logger,
    uiaCallback: passwordAuth(account),
    ...options,
  };
}

/** What a test opened: its server, its leak watch, its clients. */
export interface TestRun {
  server: RunningMockServer;
  watch: LeakWatch;
  clients: TestClient[];
}

/**
 * Ends a test's run: closes its clients, then its server, then checks that no secret it registered
 * reached a log line, an error or an event payload.
 */
export async function endTest(ended: TestRun): Promise<void> {
  try {
    await Promise.all(ended.clients.map((c) => c.close()));
  } finally {
    await ended.server.close();
  }
  ended.watch.expectNoLeaks();
}

/**
 * What each foundation test gets: its own mock server on a real socket, its own leak watch, and the
 * clients it opens. Read these inside a test or hook: each test gets new ones.
 */
export interface FoundationSetup {
  /** This test's server; started in `beforeEach`. */
  readonly server: RunningMockServer;
  /** This test's leak watch, checked after the test (see `useFoundationSetup`). */
  readonly watch: LeakWatch;
  /** `openClient` on this test's server and watch; the client is closed after the test. */
  open(account: Account, options?: Partial<CreateE2eeClientOptions>): Promise<TestClient>;
}

/**
 * Gives every test of the file a fresh server, leak watch and client list, so that no test depends
 * on another and any one runs alone (`vitest run -t`). Registers `beforeAll` (crypto-wasm),
 * `beforeEach` (the server) and `afterEach`: it closes the test's clients and server, then checks
 * that no secret the test registered (every opened client's access token at least) reached a log
 * line, an error or an event payload of that test. Call it once at the top level of a test file.
 */
export function useFoundationSetup(): FoundationSetup {
  let current: { server: RunningMockServer; watch: LeakWatch; clients: TestClient[] } | undefined;

  beforeAll(() => loadCryptoWasm());

  beforeEach(async () => {
    current = { server: await startMockServer(), watch: new LeakWatch(), clients: [] };
  });

  afterEach(async () => {
    const ended = current;
    current = undefined;
    if (ended !== undefined) await endTest(ended);
  });

  const now = () => {
    if (current === undefined) throw new Error("the foundation setup exists only inside a test");
    return current;
  };
  return {
    get server() {
      return now().server;
    },
    get watch() {
      return now().watch;
    },
    async open(account, options = {}) {
      const { server, watch, clients } = now();
      const client = await openTestClient(server, account, watch, options);
      clients.push(client);
      return client;
    },
  };
}

/** The next time `client` emits `name`. */
export function nextEvent<K extends keyof E2eeClientEvents>(
  client: TestClient,
  name: K,
): Promise<E2eeClientEvents[K]> {
  return new Promise((resolve) => client.events.once(name, resolve));
}

/** Makes `observer` fetch `users`' device lists again, as a device-list change in /sync would. */
export async function refreshDeviceLists(observer: TestClient, users: readonly string[]): Promise<void> {
  await inClient(observer, "refreshDeviceLists", [...users]);
}

/**
 * Sends `content` Olm-encrypted from `sender` to `recipient`'s device and returns what the
 * recipient decrypts. The recipient's inbox is read through the mock's control API.
 */
export async function exchangeEncryptedToDevice(
  server: RunningMockServer,
  sender: TestClient,
  recipient: TestClient,
  type: string,
  content: Record<string, unknown>,
): Promise<{ sent: unknown; decrypted: { type: string; sender: string; content: unknown } }> {
  // Claiming and sending to-device are not on the client's face (an app makes these calls itself):
  // the client's own transport carries them, with the sender's token.
  const sent = await inClient(
    sender,
    "sendEncryptedToDevice",
    recipient.userId,
    recipient.deviceId,
    type,
    content,
  );
  const inbox = server.homeserver.control.toDeviceInbox(recipient.userId, recipient.deviceId).events;
  expect(inbox.at(-1)).toMatchObject({ type: "m.room.encrypted", sender: sender.userId });
  const processed = await inClient(recipient, "receiveToDevice", [inbox.at(-1)]);
  expect(processed).toHaveLength(1);
  const decrypted = JSON.parse(processed[0] as string);
  return { sent, decrypted };
}
