import { DeviceId, initAsync, OlmMachine, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { CryptoEvents } from "../../src/crypto/crypto-events.js";
import { OutgoingRequestLoop } from "../../src/crypto/outgoing-requests.js";
import { ManualClock } from "../../src/testing/manual-clock.js";
import { FakeMatrixHttp } from "../crypto/support/fake-matrix-http.js";
import { KeyServer } from "../crypto/support/key-server.js";

/**
 * `crypto.keysQueried`: after each answered `keys/query`, the users it asked for and the servers
 * its `failures` named — what the device-list detectors read (detector c).
 */

beforeAll(async () => {
  await initAsync();
});

const loops: OutgoingRequestLoop[] = [];
afterEach(async () => {
  await Promise.all(loops.splice(0).map((l) => l.stop()));
});

async function setup(failures: Record<string, unknown> | undefined) {
  const machine = await OlmMachine.initialize(new UserId("@alice:home.example"), new DeviceId("ALICE1"));
  const keys = new KeyServer();
  const http = keys.attach(new FakeMatrixHttp(), "@alice:home.example", "ALICE1");
  if (failures !== undefined) {
    http.on("POST", "/keys/query", (c) => {
      const asked = Object.keys((c.body as { device_keys: object }).device_keys);
      return { device_keys: Object.fromEntries(asked.map((u) => [u, {}])), failures };
    });
  }
  const loop = new OutgoingRequestLoop({ machine, http, clock: new ManualClock(), random: () => 0 });
  loops.push(loop);
  const seen: CryptoEvents["keysQueried"][] = [];
  loop.events.on("keysQueried", (e) => seen.push(e));
  return { machine, loop, seen };
}

describe("crypto.keysQueried", () => {
  it("names the users each keys/query asked for, and no failed server when there was none", async () => {
    const { machine, loop, seen } = await setup(undefined);
    await loop.run();
    await machine.updateTrackedUsers([new UserId("@bob:home.example"), new UserId("@dave:remote.example")]);
    await loop.run();
    const users = seen.flatMap((e) => e.users);
    expect(users).toEqual(
      expect.arrayContaining(["@alice:home.example", "@bob:home.example", "@dave:remote.example"]),
    );
    expect(seen.every((e) => e.failedServers.length === 0)).toBe(true);
    machine.close();
  });

  it("names the servers the answer's failures listed", async () => {
    const { machine, loop, seen } = await setup({
      "remote.example": { status: 503, message: "unreachable" },
    });
    await machine.updateTrackedUsers([new UserId("@dave:remote.example")]);
    await loop.run();
    const withDave = seen.find((e) => e.users.includes("@dave:remote.example"));
    expect(withDave?.failedServers).toEqual(["remote.example"]);
    machine.close();
  });
});
