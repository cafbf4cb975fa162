import type { FetchLike } from "../../../src/http/matrix-http.js";
import { createE2eeClient, type E2eeClient } from "../../../src/index.js";
import type { SyncStatus } from "../../../src/sync/sync.js";
import { SLIDING_SYNC_PATH } from "../../../src/testing/index.js";
import { exposeScenarios } from "./scenario-protocol.js";

/**
 * One tab of an app: a client for a device whose crypto store (IndexedDB) every tab of the origin
 * shares, as a web app's tabs do. Its sliding-sync requests carry `tab=<name>` in the query, so that
 * the mock's request log says which tab sent each one; nothing else about them changes.
 */

export interface TabSession {
  baseUrl: string;
  userId: string;
  deviceId: string;
  accessToken: string;
  /** Which tab this is, as the request log will show it. */
  tab: string;
  storeName: string;
}

/** A `sync.*` event as the test reads it: plain data, to-device events reduced to what they say. */
export interface SeenSyncEvent {
  name: string;
  mode?: string;
  lockName?: string;
  toDevice?: { kind: string; type: unknown; content: unknown }[];
}

let client: E2eeClient | undefined;
let seen: SeenSyncEvent[] = [];
let slidingRequests = 0;

function live(): E2eeClient {
  if (client === undefined) throw new Error("no client is open in this tab");
  return client;
}

function taggedFetch(tab: string): FetchLike {
  return async (input, init) => {
    const url = new URL(input.url);
    if (url.pathname !== SLIDING_SYNC_PATH) return fetch(input, init);
    slidingRequests += 1;
    url.searchParams.set("tab", tab);
    const body = await input.clone().arrayBuffer();
    const tagged = new Request(url, {
      method: input.method,
      headers: input.headers,
      body: body.byteLength === 0 ? undefined : body,
      signal: input.signal,
    });
    return fetch(tagged, init);
  };
}

function plainStatus(status: SyncStatus) {
  return { state: status.state, mode: status.mode, positions: { ...status.positions } };
}

const scenarios = {
  /** Creates this tab's client; the access token stays in the page. */
  async open(session: TabSession) {
    await client?.close();
    seen = [];
    slidingRequests = 0;
    client = await createE2eeClient({
      baseUrl: session.baseUrl,
      userId: session.userId,
      deviceId: session.deviceId,
      accessToken: session.accessToken,
      cryptoStore: { name: session.storeName, passphrase: "the tabs' shared store passphrase" },
      fetch: taggedFetch(session.tab),
    });
    client.events.onAny((name, payload) => {
      if (!name.startsWith("sync.")) return;
      const p = payload as {
        mode?: string;
        lockName?: string;
        events?: { kind: string; event: Record<string, unknown> }[];
      };
      seen.push({
        name,
        ...(p.mode === undefined ? {} : { mode: p.mode }),
        ...(p.lockName === undefined ? {} : { lockName: p.lockName }),
        ...(p.events === undefined
          ? {}
          : {
              toDevice: p.events.map((e) => ({ kind: e.kind, type: e.event.type, content: e.event.content })),
            }),
      });
    });
  },

  /** `client.sync.start()` (sliding); resolves with the status once it runs or waits for the lock. */
  async start(pollTimeoutMs: number) {
    await live().sync.start({ pollTimeoutMs });
    return plainStatus(await live().sync.status());
  },

  async status() {
    return plainStatus(await live().sync.status());
  },

  async stop() {
    await live().sync.stop();
    return plainStatus(await live().sync.status());
  },

  /** `client.close()`, as an app does when the user logs out in this tab. */
  async closeClient() {
    await live().close();
    client = undefined;
  },

  /** The `sync.*` events this tab's client emitted, in order. */
  async events() {
    return seen;
  },

  /** How many sliding-sync requests this tab sent (counted before they leave the page). */
  async slidingRequests() {
    return slidingRequests;
  },

  /** Whether this origin offers Web Locks here (secure context). */
  async hasWebLocks() {
    return typeof navigator.locks?.request === "function";
  },
};

export type SyncTabsScenarios = typeof scenarios;
exposeScenarios(scenarios);
