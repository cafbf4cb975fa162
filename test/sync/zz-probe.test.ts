import { DeviceLists } from "@matrix-org/matrix-sdk-crypto-wasm";
import { it } from "vitest";
import { createE2eeClient } from "../../src/client.js";
import { createMockHomeserver } from "../../src/testing/index.js";

it("probe", async () => {
  const hs = createMockHomeserver();
  const acc = hs.control.createUser("alice")!;
  const client = await createE2eeClient({ baseUrl: "http://localhost", ...acc, fetch: (r) => hs.fetch(r) });
  const ups = () => hs.control.requestLog().filter((e) => e.path.endsWith("keys/upload"));
  const desc = () => ups().map((e) => { const b = e.body as any; return `otk=${Object.keys(b.one_time_keys ?? {}).length} fb=${Object.keys(b.fallback_keys ?? {}).length} dk=${b.device_keys ? 1 : 0}`; });
  await client.processOutgoingRequests();
  console.log("initial", desc());
  const m = client.olmMachine;
  const step = async (name: string, counts: Map<string, number>, fb: Set<string> | undefined, classic = false) => {
    const n = ups().length;
    await m[classic ? "receiveSyncChanges" : "receiveSyncChangesMsc4186"]("[]", new DeviceLists(), counts, fb);
    await client.processOutgoingRequests();
    console.log(name, desc().slice(n));
  };
  await step("msc empty map", new Map(), undefined);
  await step("msc 49", new Map([["signed_curve25519", 49]]), undefined);
  await step("msc 50", new Map([["signed_curve25519", 50]]), undefined);
  await step("msc 0", new Map([["signed_curve25519", 0]]), undefined);
  await step("msc empty + Set[]", new Map(), new Set());
  await step("msc empty + Set[] again", new Map(), new Set());
  await step("msc empty + Set[scc]", new Map(), new Set(["signed_curve25519"]));
  await step("msc 10 + Set[]", new Map([["signed_curve25519", 10]]), new Set());
  await step("classic empty", new Map(), undefined, true);
  await step("classic 60", new Map([["signed_curve25519", 60]]), undefined, true);
  await step("classic other alg only", new Map([["curve25519", 3]]), undefined, true);
  await step("msc 49 again", new Map([["signed_curve25519", 49]]), undefined);
  await step("msc 49 again2", new Map([["signed_curve25519", 49]]), undefined);
  await client.close();
});
