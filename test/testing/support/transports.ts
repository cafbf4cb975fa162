import { afterEach } from "vitest";
import {
  createMockHomeserver,
  type MockHomeserver,
  type MockHomeserverOptions,
  startMockServer,
} from "../../../src/testing/index.js";

/**
 * The two ways into the mock: its in-process `fetch`, and a real socket reached with the
 * platform's `fetch`. Endpoint tests run against both so neither path can drift.
 */
export interface Harness {
  homeserver: MockHomeserver;
  /** Base URL requests go to. */
  url: string;
  fetch: (input: string | URL, init?: RequestInit) => Promise<Response>;
  close(): Promise<void>;
}

export type TransportName = "in-process" | "socket";
export const transports: TransportName[] = ["in-process", "socket"];

export async function startHarness(
  transport: TransportName,
  options: MockHomeserverOptions = {},
): Promise<Harness> {
  const homeserver = createMockHomeserver(options);
  if (transport === "in-process") {
    return { homeserver, url: homeserver.baseUrl, fetch: homeserver.fetch, close: async () => {} };
  }
  const running = await startMockServer({ homeserver });
  // Relative paths resolve against the socket, as the in-process `fetch` resolves them against `baseUrl`.
  return {
    homeserver,
    url: running.url,
    fetch: (input, init) => fetch(new URL(input, running.url), init),
    close: running.close,
  };
}

/**
 * What the route-test helpers send through: a `MockHomeserver` itself (in-process) or a `Harness`.
 * Paths may be relative on both.
 */
export interface FetchTarget {
  fetch(input: string, init?: RequestInit): Promise<Response>;
}

export type StartHarness = (options?: MockHomeserverOptions) => Promise<Harness>;

/**
 * For a `describe` body: a `start` that opens a fresh harness on `transport` whenever a test asks
 * for one (several per test if it needs them) and closes each after that test.
 */
export function harnessesOn(transport: TransportName): StartHarness {
  const open: Harness[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((h) => h.close()));
  });
  return async (options) => {
    const h = await startHarness(transport, options);
    open.push(h);
    return h;
  };
}

export interface JsonReply {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** One JSON request; `body` is serialised unless it is already a string. */
export async function call(
  h: Harness,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<JsonReply> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.Authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
    headers["Content-Type"] ??= "application/json";
  }
  const res = await h.fetch(`${h.url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

export interface TestUser {
  userId: string;
  deviceId: string;
  token: string;
  password: string;
}

/** Registers through the real two-step UIA flow, as a client would. */
export async function register(h: Harness, username: string, password = "correct horse"): Promise<TestUser> {
  const first = await call(h, "POST", "/_matrix/client/v3/register", { body: { username, password } });
  if (first.status !== 401) throw new Error(`register: expected 401, got ${first.status}`);
  const second = await call(h, "POST", "/_matrix/client/v3/register", {
    body: { username, password, auth: { type: "m.login.dummy", session: first.body.session } },
  });
  if (second.status !== 200) throw new Error(`register: expected 200, got ${second.status}`);
  return {
    userId: second.body.user_id as string,
    deviceId: second.body.device_id as string,
    token: second.body.access_token as string,
    password,
  };
}
