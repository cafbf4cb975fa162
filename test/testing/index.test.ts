import { describe, expect, it } from "vitest";
import {
  canonicalJson,
  clientRoute,
  createMockHomeserver,
  currentSyncPosition,
  DEHYDRATED_DEVICE_PATH,
  dehydrationFlagsByProfile,
  e2eeFlagsByProfile,
  formatSyncToken,
  type ProfileName,
  parseSyncToken,
  profiles,
} from "../../src/testing/index.js";
import { expectedDehydrationFlags, expectedE2eeFlags } from "./support/expected-profiles.js";

/** What the public entry offers a test author beyond the server itself, used as a test would. */

async function json(res: Response): Promise<{ status: number; body: Record<string, unknown> }> {
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("the testing entry point", () => {
  it("builds a sync token for now that keys/changes and /sync accept, without syncing first", async () => {
    const hs = createMockHomeserver();
    const alice = hs.control.createUser("alice")!;
    const headers = { Authorization: `Bearer ${alice.accessToken}` };
    const position = currentSyncPosition(hs.state);
    const now = formatSyncToken(position);

    hs.control.createUser("bob");
    const changes = await json(await hs.fetch(`/_matrix/client/v3/keys/changes?from=${now}`, { headers }));
    const sync = await json(await hs.fetch(`/_matrix/client/v3/sync?since=${now}`, { headers }));

    expect(parseSyncToken(now)).toEqual(position);
    expect(changes).toEqual({ status: 200, body: { changed: [], left: [] } });
    expect(sync.status).toBe(200);
    expect(parseSyncToken(sync.body.next_batch as string)).toBeDefined();
    expect(parseSyncToken("12")).toBeUndefined();
  });

  it("declares an extra client route with clientRoute, served under r0 as under v3", async () => {
    const hs = createMockHomeserver({
      extraRoutes: [
        clientRoute("GET", "org.example/whoami_twice", (ctx) => {
          const { userId } = ctx.caller();
          return { status: 200, body: { user_ids: [userId, userId] } };
        }),
      ],
    });
    const alice = hs.control.createUser("alice")!;
    const headers = { Authorization: `Bearer ${alice.accessToken}` };

    const v3 = await json(await hs.fetch("/_matrix/client/v3/org.example/whoami_twice", { headers }));
    const r0 = await json(await hs.fetch("/_matrix/client/r0/org.example/whoami_twice", { headers }));
    const anonymous = await json(await hs.fetch("/_matrix/client/v3/org.example/whoami_twice"));

    expect(v3).toEqual({ status: 200, body: { user_ids: [alice.userId, alice.userId] } });
    expect(r0).toEqual(v3);
    expect(anonymous).toMatchObject({ status: 401, body: { errcode: "M_MISSING_TOKEN" } });
  });

  it("names the MSC3814 path: 404 M_UNRECOGNIZED there means unsupported, 404 M_NOT_FOUND none yet", async () => {
    const on = createMockHomeserver();
    const off = createMockHomeserver({ overrides: { dehydratedDevices: false } });
    const get = async (hs: typeof on) => {
      const alice = hs.control.createUser("alice")!;
      const res = await hs.fetch("/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device", {
        headers: { Authorization: `Bearer ${alice.accessToken}` },
      });
      return [res.status, ((await res.json()) as { errcode: string }).errcode];
    };

    expect(DEHYDRATED_DEVICE_PATH).toBe("/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device");
    expect(await get(off)).toEqual([404, "M_UNRECOGNIZED"]);
    expect(await get(on)).toEqual([404, "M_NOT_FOUND"]);
  });

  it("exports each profile's key-endpoint and MSC3814 flags with the values of the server it models", () => {
    expect(e2eeFlagsByProfile).toEqual(expectedE2eeFlags);
    expect(dehydrationFlagsByProfile).toEqual(expectedDehydrationFlags);
    for (const name of Object.keys(expectedE2eeFlags) as ProfileName[]) {
      expect(profiles[name]).toMatchObject({
        name,
        ...expectedE2eeFlags[name],
        ...expectedDehydrationFlags[name],
      });
    }
  });

  it("encodes JSON canonically, as signatures over key objects need", () => {
    expect(canonicalJson({ b: [2, { d: 1, c: null }], a: "é" })).toBe('{"a":"é","b":[2,{"c":null,"d":1}]}');
  });
});
