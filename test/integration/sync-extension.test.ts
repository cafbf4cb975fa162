import { describe, expect, it } from "vitest";
import { SLIDING_SYNC_PATH } from "../../src/sync/sync-loops.js";
import type { ProfileName } from "../../src/testing/index.js";
import {
  expectEncryptionRequests,
  matrixCall,
  posOf,
  sendPlainToDevice,
  sinceOf,
  slidingProfiles,
  slidingRequests,
  waitUntil,
} from "./support/sync-fixtures.js";
import { range, storedPositions, useAliceAndBob } from "./support/to-device-stream.js";

/**
 * The app's own sliding-sync connection carrying this device's encryption extensions
 * (`client.sync.extension()`), over a real socket on every profile. MSC4186 scopes a `pos` to the
 * connection (`conn_id`) it was handed on; the `to_device` cursor is the device's on any connection
 * (MSC3885). So of the app's responses the SDK keeps only the cursor: once the app lets go and the
 * SDK's own loop starts, that loop opens its own connection from the cursor — it never sends the
 * app's `pos` on its `conn_id`, which the server would refuse (`M_UNKNOWN_POS`) — and no message
 * is lost or delivered twice.
 */

const start = useAliceAndBob();

/** The app's room-list connection: its own `conn_id`, no lists needed for the test. */
const APP_CONN_ID = "org.example.app-room-list";

describe.each(slidingProfiles)("the app's own sliding connection on %s", (profile: ProfileName) => {
  it("keeps the to-device cursor but not the app's pos: the SDK's loop later starts its own connection from that cursor", async () => {
    const { server, hs, serverClock, alice, bob, client, seen } = await start(profile);
    const extension = await client.sync.extension();
    await sendPlainToDevice(server.url, bob, alice, range(0, 5));

    // The app's loop: each request carries the extensions, each response goes to `receive()`.
    let appPos: string | undefined;
    const appSync = async () => {
      const query = appPos === undefined ? "?timeout=0" : `?timeout=0&pos=${encodeURIComponent(appPos)}`;
      const response = await matrixCall(server.url, alice, "POST", `${SLIDING_SYNC_PATH}${query}`, {
        conn_id: APP_CONN_ID,
        extensions: await extension.request(),
      });
      appPos = String(response.pos);
      await extension.receive(response);
    };
    await appSync();
    // The second request acknowledges what the first delivered.
    await appSync();
    expect(seen.seqs).toEqual(range(0, 5));

    const kept = await client.sync.status();
    const cursor = kept.positions.toDeviceSince;
    expect(cursor).toBeDefined();
    expect(kept.positions).toEqual({ pos: undefined, toDeviceSince: cursor, classicSince: undefined });
    // Not in memory only: a reload would read the same.
    expect(await storedPositions(client)).toEqual(kept.positions);

    // A response that is not one is refused whole, naming the request it would answer.
    await expect(extension.receive({ extensions: {} })).rejects.toMatchObject({
      name: "MalformedResponseError",
      method: "POST",
      path: SLIDING_SYNC_PATH,
      issues: [{ path: "pos" }],
    });
    expect((await client.sync.status()).positions).toEqual(kept.positions);

    await extension.release();
    await sendPlainToDevice(server.url, bob, alice, range(5, 10));
    await client.sync.start();
    await waitUntil(
      "Alice's own loop has all 10 and long-polls",
      () => seen.seqs.length >= 10 && serverClock.pendingSleeps === 1,
      10_000,
    );

    const own = slidingRequests(hs);
    expect([posOf(own[0]!), sinceOf(own[0]!)]).toEqual([undefined, cursor]);
    expect(own.filter((r) => r.status === 400)).toEqual([]);
    expect(seen.of("sync.positionLost")).toEqual([]);
    expect(seen.of("sync.error")).toEqual([]);
    expect(seen.seqs).toEqual(range(0, 10));
    expect(seen.of("sync.toDevice").map((p) => p.mode)).toEqual(["extension", "sliding"]);
    expectEncryptionRequests(own);
  });

  it("a lost position on the app's connection leaves the SDK's own connection's pos alone", async () => {
    const { hs, serverClock, client, seen } = await start(profile);
    await client.sync.start();
    await waitUntil("Alice's own loop long-polls", () => serverClock.pendingSleeps === 1);
    await client.sync.stop();
    const own = (await client.sync.status()).positions.pos;
    expect(own).toBeDefined();

    const extension = await client.sync.extension();
    await extension.positionLost();
    expect((await client.sync.status()).positions.pos).toBe(own);
    await extension.release();

    hs.control.clearRequestLog();
    await client.sync.start();
    await waitUntil("Alice's own loop long-polls again", () => serverClock.pendingSleeps === 1, 10_000);
    // Resumed, not restarted: the SDK's connection never lost its position.
    expect(posOf(slidingRequests(hs)[0]!)).toBe(own);
    expect(seen.of("sync.positionLost")).toEqual([{ mode: "extension" }]);
    expect(seen.of("sync.error")).toEqual([]);
  });
});
