import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { loadCryptoWasm } from "../../src/crypto/load-wasm.js";
import type { MatrixHttp } from "../../src/http/types.js";
import { OlmSessions } from "../../src/rooms/olm-sessions.js";

type ClaimMachine = Pick<OlmMachine, "getMissingSessions" | "outgoingRequests" | "markRequestAsSent">;

/** A machine whose next claims ask for `asked` (or nothing), and a server that answers `answered`. */
function scripted(claims: (Record<string, string[]> | undefined)[], answered: Record<string, string[]>[]) {
  let inFlight = 0;
  let most = 0;
  const machine = {
    getMissingSessions: async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight--;
      const asked = claims.shift();
      if (asked === undefined) return undefined;
      const oneTimeKeys = Object.fromEntries(
        Object.entries(asked).map(([u, ds]) => [
          u,
          Object.fromEntries(ds.map((d) => [d, "signed_curve25519"])),
        ]),
      );
      return { id: "c", type: 2, body: JSON.stringify({ one_time_keys: oneTimeKeys }), free: () => {} };
    },
    outgoingRequests: async () => [],
    markRequestAsSent: async () => true,
  } as unknown as ClaimMachine;
  const http: MatrixHttp = {
    request: (async () => {
      const got = answered.shift() ?? {};
      return {
        one_time_keys: Object.fromEntries(
          Object.entries(got).map(([u, ds]) => [
            u,
            Object.fromEntries(ds.map((d) => [d, { "signed_curve25519:A": {} }])),
          ]),
        ),
      };
    }) as MatrixHttp["request"],
  };
  return { machine, http, most: () => most };
}

describe("OlmSessions", () => {
  beforeAll(() => loadCryptoWasm());
  const signal = new AbortController().signal;

  it("marks a device the claim found no key for as unavailable, and reachable again once it is no longer asked for", async () => {
    const { machine, http } = scripted([{ "@bob:hs": ["A", "B"] }, undefined], [{ "@bob:hs": ["A"] }]);
    const sessions = new OlmSessions();
    await sessions.claim(machine, http, ["@bob:hs"], signal);
    expect(sessions.state("@bob:hs", "A")).toBe("available");
    expect(sessions.state("@bob:hs", "B")).toBe("unavailable");
    // B opened a session to us meanwhile: the machine no longer asks for it.
    await sessions.claim(machine, http, ["@bob:hs"], signal);
    expect(sessions.state("@bob:hs", "B")).not.toBe("unavailable");
  });

  it("runs one claim at a time", async () => {
    const { machine, http, most } = scripted([undefined, undefined, undefined], []);
    const sessions = new OlmSessions();
    await Promise.all([1, 2, 3].map(() => sessions.claim(machine, http, ["@bob:hs"], signal)));
    expect(most()).toBe(1);
  });
});
