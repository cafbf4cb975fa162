import { describe, expect, it } from "vitest";
import { DehydrationError } from "../../../src/dehydration/device/errors.js";
import type { DrainCheckpoint } from "../../../src/dehydration/drain/checkpoint-store.js";
import type {
  DrainPage,
  DrainPageRequest,
  DrainPageSource,
} from "../../../src/dehydration/drain/drain-loop.js";
import {
  DehydratedDeviceDrainer,
  type DrainableDevice,
  type DrainRehydrator,
} from "../../../src/dehydration/drain/drainer.js";
import { isDrainError } from "../../../src/dehydration/drain/errors.js";
import type { DrainEvents } from "../../../src/dehydration/drain/events.js";
import { MalformedResponseError } from "../../../src/errors/malformed-response-error.js";
import { MatrixApiError } from "../../../src/errors/matrix-api-error.js";
import { SecretStorageError } from "../../../src/secret-storage/errors.js";
import { MemoryStateStore } from "../../../src/state/memory-state-store.js";
import { ManualClock } from "../../../src/testing/manual-clock.js";

const userId = "@alice:example.org";

function event(n: number) {
  return { type: "m.room.encrypted", sender: "@bob:example.org", content: { n } };
}

/** The server: one device slot, and per device an inbox served in pages of 10 with cursors `p1`, `p2`… */
class FakeServer implements DrainRehydrator, DrainPageSource {
  device: string | undefined = "DEV1";
  readonly inbox = Array.from({ length: 35 }, (_, i) => event(i));
  readonly requests: (string | undefined)[] = [];
  readonly received: number[] = [];
  freed = 0;
  rehydrateError: unknown;
  failAt: { cursor: string; error: unknown } | undefined;
  /** A page (or, with `"lookup"`, the device lookup) that never answers, until its request is aborted. */
  hangAt: string | undefined;
  lookups = 0;

  async rehydrate(
    options: { signal?: AbortSignal; onDevice?: (deviceId: string) => void } = {},
  ): Promise<DrainableDevice | undefined> {
    this.lookups++;
    if (this.hangAt === "lookup") await untilAborted(options.signal!);
    if (this.device !== undefined) options.onDevice?.(this.device);
    if (this.rehydrateError !== undefined) throw this.rehydrateError;
    if (this.device === undefined) return undefined;
    const server = this;
    return {
      deviceId: this.device,
      async receiveEvents(events) {
        const ns = events.map((e) => (e as { content: { n: number } }).content.n);
        server.received.push(...ns);
        return ns.map((n) => ({ roomId: `!r${n}:x`, sessionId: `s${n}`, senderKey: "curve" }));
      },
      free() {
        server.freed++;
      },
    };
  }

  async fetchPage(request: DrainPageRequest): Promise<DrainPage> {
    this.requests.push(request.cursor);
    if (this.failAt && this.failAt.cursor === request.cursor) throw this.failAt.error;
    if (this.hangAt !== undefined && this.hangAt === request.cursor) await untilAborted(request.signal);
    const start = request.cursor === undefined ? 0 : Number(request.cursor.slice(1)) * 10;
    const events = this.inbox.slice(start, start + 10);
    const more = start + 10 < this.inbox.length;
    return { events, nextBatch: more ? `p${start / 10 + 1}` : undefined, variant: "get" };
  }
}

function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

function setup(stateStore = new MemoryStateStore(), lifetime?: AbortSignal) {
  const server = new FakeServer();
  const make = () => {
    const drainer = new DehydratedDeviceDrainer({
      rehydrator: server,
      http: { request: () => Promise.reject(new Error("no HTTP in this test")) },
      userId,
      stateStore,
      cryptoStoreDurability: "memory",
      clock: new ManualClock(),
      pageSource: server,
      yieldToEventLoop: async () => {},
      signal: lifetime,
    });
    const seen: { name: keyof DrainEvents; payload: unknown }[] = [];
    for (const name of ["found", "rehydrated", "page", "completed", "truncated", "error"] as const) {
      drainer.events.on(name, (payload) => seen.push({ name, payload }));
    }
    return { drainer, seen };
  };
  return { server, stateStore, make };
}

/** A checkpoint of `deviceId` part-way through its first drain, resuming at `cursor`. */
function checkpointAt(deviceId: string, cursor: string): DrainCheckpoint {
  const pages = Number(cursor.slice(1));
  return {
    deviceId,
    position: { cursor, pages, events: pages * 10, roomKeys: pages * 10 },
    trusted: { cursor: undefined, pages: 0, events: 0, roomKeys: 0 },
    guard: { events: pages * 10, elapsedMs: 0 },
    complete: false,
    savedAtMs: 0,
  };
}

const apiError = (status: number, errcode: string) =>
  new MatrixApiError({
    status,
    errcode,
    error: undefined,
    retryAfterMs: undefined,
    softLogout: false,
    kind: status >= 500 ? "transient" : "permanent",
    method: "GET",
    path: "/events",
    data: undefined,
  });

describe("DehydratedDeviceDrainer", () => {
  it("reports found, rehydrated, each page and completed, checkpointing after every page", async () => {
    const t = setup();
    const { drainer, seen } = t.make();
    const result = await drainer.drain();
    expect(result).toMatchObject({
      outcome: "completed",
      deviceId: "DEV1",
      totals: { pages: 4, events: 35, roomKeys: 35 },
    });
    expect(seen.map((e) => e.name)).toEqual([
      "found",
      "rehydrated",
      "page",
      "page",
      "page",
      "page",
      "completed",
    ]);
    expect(seen[0]!.payload).toEqual({ deviceId: "DEV1", resumeFrom: undefined });
    expect(seen[2]!.payload).toMatchObject({ page: 1, events: 10, roomKeys: 10, cursor: "p1", next: "more" });
    expect((seen[2]!.payload as { importedKeys: unknown[] }).importedKeys).toEqual(
      Array.from({ length: 10 }, (_, n) => ({ roomId: `!r${n}:x`, sessionId: `s${n}`, senderKey: "curve" })),
    );
    expect(result.outcome === "completed" && result.importedKeys.map((k) => k.sessionId)).toEqual(
      t.server.inbox.map((_, n) => `s${n}`),
    );
    // The end: the last page's own cursor, with its five events known, trusted for the next drain.
    const end = { cursor: "p3", skip: { events: 5, digest: expect.stringMatching(/^[0-9a-f]{64}$/) } };
    expect(await drainer.checkpoints.load()).toMatchObject({
      deviceId: "DEV1",
      position: { ...end, pages: 4, events: 35, roomKeys: 35 },
      trusted: end,
      complete: true,
    });
    expect(t.server.received).toEqual(t.server.inbox.map((_, i) => i));
    expect(t.server.freed).toBe(1);
  });

  it("resumes a failed drain from its checkpoint, in a new drainer on the same state store", async () => {
    const t = setup();
    t.server.failAt = { cursor: "p2", error: apiError(502, "M_UNKNOWN") };
    const first = t.make();
    await expect(first.drainer.drain()).rejects.toMatchObject({
      name: "DrainError",
      code: "fetch_failed",
      details: { cursor: "p2", pages: 2, events: 20 },
    });
    expect(first.seen.at(-1)).toMatchObject({ name: "error", payload: { deviceId: "DEV1" } });
    expect(t.server.freed).toBe(1);

    t.server.failAt = undefined;
    t.server.requests.length = 0;
    t.server.received.length = 0;
    const second = t.make();
    const result = await second.drainer.drain();
    expect(second.seen[0]).toEqual({ name: "found", payload: { deviceId: "DEV1", resumeFrom: "p2" } });
    expect(t.server.requests).toEqual(["p2", "p3"]);
    expect(t.server.received[0]).toBe(20);
    expect(result).toMatchObject({
      outcome: "completed",
      resumedFrom: "p2",
      totals: { pages: 4, events: 35 },
    });
  });

  it("starts over when asked to restart, ignoring the checkpoint", async () => {
    const t = setup();
    const { drainer } = t.make();
    await drainer.drain();
    t.server.requests.length = 0;
    await drainer.drain({ restart: true });
    expect(t.server.requests[0]).toBeUndefined();
  });

  it("drops a checkpoint for a device that is no longer the server's", async () => {
    const t = setup();
    const { drainer } = t.make();
    await drainer.checkpoints.save(checkpointAt("OLD", "p3"));
    const result = await drainer.drain();
    expect(t.server.requests[0]).toBeUndefined();
    expect(result).toMatchObject({ outcome: "completed", resumedFrom: undefined, totals: { events: 35 } });
  });

  it("answers no_device and drops the checkpoint when the server has no device", async () => {
    const t = setup();
    const { drainer, seen } = t.make();
    await drainer.drain();
    t.server.device = undefined;
    expect(await drainer.drain()).toEqual({ outcome: "no_device" });
    expect(await drainer.checkpoints.load()).toBeUndefined();
    expect(seen.filter((e) => e.name === "found")).toHaveLength(1);
  });

  it("drops the checkpoint when the device is replaced under a running drain (403)", async () => {
    const t = setup();
    t.server.failAt = { cursor: "p2", error: apiError(403, "M_FORBIDDEN") };
    const { drainer } = t.make();
    await expect(drainer.drain()).rejects.toMatchObject({ code: "device_gone" });
    expect(await drainer.checkpoints.load()).toBeUndefined();
  });

  it("keeps the checkpoint and reports the error when the device is refused", async () => {
    const t = setup();
    const { drainer, seen } = t.make();
    await drainer.checkpoints.save(checkpointAt("DEV1", "p1"));
    const refused = new DehydrationError("device_rejected", "a server may be injecting a device");
    t.server.rehydrateError = refused;
    const error = await drainer.drain().catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "DrainError", code: "device_rejected", cause: refused });
    expect(seen.map((e) => e.name)).toEqual(["error"]);
    expect(seen[0]!.payload).toEqual({ deviceId: "DEV1", error });
    expect(error).toMatchObject({ details: { deviceId: "DEV1", cursor: undefined } });
    expect(await drainer.checkpoints.load()).toMatchObject({ position: { cursor: "p1" } });
  });

  const wrapped: [string, unknown, string][] = [
    ["a refused device", new DehydrationError("device_rejected", "refused"), "device_rejected"],
    [
      "an identity this login does not trust yet",
      new DehydrationError("cross_signing_not_restored", "restore cross-signing first"),
      "cross_signing_not_restored",
    ],
    ["no dehydration key", new DehydrationError("no_key", "no key"), "key_unavailable"],
    ["a key that does not open the device", new DehydrationError("wrong_key", "wrong"), "key_unavailable"],
    ["no secret-storage key", new DehydrationError("no_secret_storage_key", "none"), "key_unavailable"],
    ["a secret-storage failure", new SecretStorageError("bad_mac", "tampered"), "key_unavailable"],
    [
      "an unknown device algorithm",
      new DehydrationError("unsupported_device_algorithm", "algo"),
      "unsupported_device_algorithm",
    ],
    ["an API error on the device lookup", apiError(500, "M_UNKNOWN"), "fetch_failed"],
    [
      "a malformed device lookup",
      new MalformedResponseError("GET", "/dehydrated_device", [{ path: "device_id", code: "invalid_type" }]),
      "fetch_failed",
    ],
  ];
  for (const [what, cause, code] of wrapped) {
    it(`rejects only with DrainError: ${what} becomes ${code}, with the original as cause`, async () => {
      const t = setup();
      const { drainer } = t.make();
      t.server.rehydrateError = cause;
      const error = await drainer.drain().catch((e: unknown) => e);
      expect(isDrainError(error)).toBe(true);
      expect(error).toMatchObject({ code, cause });
      expect(t.server.requests).toEqual([]);
    });
  }

  it("lets a second call join the drain in flight instead of running two", async () => {
    const t = setup();
    const { drainer } = t.make();
    const [a, b] = await Promise.all([drainer.drain(), drainer.drain()]);
    expect(a).toBe(b);
    expect(t.server.requests.filter((c) => c === undefined)).toHaveLength(1);
  });

  it("stops the drain in flight, resolving once it settled with its checkpoint kept", async () => {
    const t = setup();
    t.server.hangAt = "p2";
    const { drainer, seen } = t.make();
    const settled: unknown[] = [];
    const drain = drainer.drain().catch((error: unknown) => settled.push(error));
    while (!t.server.requests.includes("p2")) await new Promise((r) => setImmediate(r));

    await drainer.stop();
    expect(settled).toHaveLength(1);
    expect(settled[0]).toMatchObject({
      name: "DrainError",
      code: "aborted",
      details: { deviceId: "DEV1", cursor: "p2", pages: 2, events: 20 },
    });
    expect(seen.at(-1)).toMatchObject({ name: "error", payload: { deviceId: "DEV1" } });
    expect(t.server.freed).toBe(1);
    expect(await drainer.checkpoints.load()).toMatchObject({
      position: { cursor: "p2", pages: 2 },
      trusted: { cursor: undefined },
      complete: false,
    });
    await drain;

    // The drainer stays usable: the next drain resumes at the checkpoint.
    t.server.hangAt = undefined;
    t.server.requests.length = 0;
    expect(await drainer.drain()).toMatchObject({ outcome: "completed", resumedFrom: "p2" });
    expect(t.server.requests).toEqual(["p2", "p3"]);
    await drainer.stop();
  });

  it("reports a stop before the first page as the drain's own aborted error", async () => {
    const t = setup();
    t.server.hangAt = "lookup";
    const { drainer } = t.make();
    const drain = drainer.drain().catch((error: unknown) => error);
    await drainer.stop();
    expect(await drain).toMatchObject({
      name: "DrainError",
      code: "aborted",
      details: { deviceId: undefined, cursor: undefined, pages: 0 },
    });
    expect(t.server.requests).toEqual([]);
  });

  it("refuses every drain at once after its lifetime signal fired, fetching nothing", async () => {
    const lifetime = new AbortController();
    const t = setup(new MemoryStateStore(), lifetime.signal);
    t.server.hangAt = "p1";
    const { drainer } = t.make();
    const first = drainer.drain().catch((error: unknown) => error);
    while (!t.server.requests.includes("p1")) await new Promise((r) => setImmediate(r));

    lifetime.abort(new Error("the client was closed"));
    expect(await first).toMatchObject({ name: "DrainError", code: "aborted", details: { cursor: "p1" } });
    t.server.hangAt = undefined;
    t.server.requests.length = 0;
    await expect(drainer.drain()).rejects.toMatchObject({ name: "DrainError", code: "aborted" });
    expect(t.server.requests).toEqual([]);
  });

  it("reports a truncated drain and rolls its checkpoint back to the trusted start", async () => {
    const t = setup();
    const { drainer, seen } = t.make();
    const result = await drainer.drain({ limits: { maxEvents: 15 } });
    expect(result).toMatchObject({ outcome: "truncated", reason: "event_cap", untrustedCursor: "p2" });
    expect(seen.at(-1)).toMatchObject({
      name: "truncated",
      payload: { deviceId: "DEV1", reason: "event_cap", cursor: undefined, untrustedCursor: "p2" },
    });
    expect(await drainer.checkpoints.load()).toMatchObject({
      position: { cursor: undefined },
      trusted: { cursor: undefined },
      complete: false,
    });

    // Whatever the cut-off run saw, the next drain reads every page from the start.
    t.server.requests.length = 0;
    t.server.received.length = 0;
    expect(await drainer.drain()).toMatchObject({ outcome: "completed", resumedFrom: undefined });
    expect(t.server.requests).toEqual([undefined, "p1", "p2", "p3"]);
    expect(t.server.received).toEqual(t.server.inbox.map((_, i) => i));
  });

  it("re-reads only the last page after a completed drain, skipping the events it imported", async () => {
    const t = setup();
    const { drainer } = t.make();
    await drainer.drain();
    t.server.requests.length = 0;
    t.server.received.length = 0;

    const again = await drainer.drain();
    expect(t.server.requests).toEqual(["p3"]);
    expect(t.server.received).toEqual([]);
    expect(again).toMatchObject({ outcome: "completed", run: { events: 5, skippedEvents: 5, roomKeys: 0 } });

    // New messages behind the known head are imported, and only they.
    t.server.inbox.push(event(35), event(36));
    t.server.requests.length = 0;
    expect(await drainer.drain()).toMatchObject({
      outcome: "completed",
      run: { skippedEvents: 5, roomKeys: 2 },
    });
    expect(t.server.requests).toEqual(["p3"]);
    expect(t.server.received).toEqual([35, 36]);
  });

  it("imports the last page again when it no longer starts with the events it imported", async () => {
    const t = setup();
    const { drainer } = t.make();
    await drainer.drain();
    t.server.inbox[30] = event(1_000);
    t.server.received.length = 0;
    expect(await drainer.drain()).toMatchObject({ outcome: "completed", run: { skippedEvents: 0 } });
    expect(t.server.received).toEqual([1_000, 31, 32, 33, 34]);
  });
});
