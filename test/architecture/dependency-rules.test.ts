import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { cruise, type ICruiseResult, type IViolation } from "dependency-cruiser";
import extractDepcruiseOptions from "dependency-cruiser/config-utl/extract-depcruise-options";
import extractTSConfig from "dependency-cruiser/config-utl/extract-ts-config";
import { describe, expect, it } from "vitest";

/**
 * The repo's real dependency rules (.dependency-cruiser.mjs, run by `npm run deps`), checked
 * against the real src/ and against a fixture tree that breaks each rule on purpose, so a rule
 * that silently stopped matching (a typo in a path pattern, say) fails here.
 */

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CONFIG = `${ROOT}.dependency-cruiser.mjs`;
const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));

type Found = [rule: string, from: string, to: string];

/** Cruises `src` under `baseDir` with the repo's config, as `npm run deps` does. */
async function violations(baseDir: string): Promise<IViolation[]> {
  const options = await extractDepcruiseOptions(CONFIG);
  const tsConfig = extractTSConfig(`${ROOT}tsconfig.json`);
  const { output } = await cruise(["src"], { ...options, baseDir }, {}, { tsConfig });
  if (typeof output === "string") throw new Error(`expected a cruise result, got: ${output}`);
  return (output as ICruiseResult).summary.violations;
}

/** A violation as `[rule, from, to]`, with a package named by its name rather than its path. */
function found(v: IViolation): Found {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(v.to)?.[1];
  return [v.rule.name, v.from, pkg ?? v.to];
}

const byText = (a: Found, b: Found) => a.join(" ").localeCompare(b.join(" "));

describe("the dependency rules", () => {
  it("report every forbidden import of the fixture tree by its rule, and nothing else", async () => {
    const actual = (await violations(FIXTURES)).map(found).sort(byText);
    const expected: Found[] = [
      ["crypto-no-features", "src/crypto/imports-facade.ts", "src/client.ts"],
      ["crypto-no-features", "src/crypto/imports-feature.ts", "src/device-lists/device-list.ts"],
      ["http-only-transport", "src/http/imports-crypto.ts", "src/crypto/allowed.ts"],
      ["http-only-transport", "src/http/imports-feature.ts", "src/dehydration/dehydration.ts"],
      // src/rooms is named by no rule: the transport's allowlist catches folders added later.
      ["http-only-transport", "src/http/imports-future-feature.ts", "src/rooms/room.ts"],
      ["no-circular", "src/sync/cycle-a.ts", "src/sync/cycle-b.ts"],
      ["no-circular", "src/sync/type-cycle-a.ts", "src/sync/type-cycle-b.ts"],
      ["no-entry-point-import", "src/rooms/imports-entry-point.ts", "src/index.ts"],
      ["no-facade-import", "src/crypto/imports-facade.ts", "src/client.ts"],
      ["no-facade-import", "src/dehydration/imports-facade.ts", "src/client.ts"],
      ["no-non-package-json", "src/rooms/imports-undeclared-package.ts", "ky"],
      ["not-to-dev-dep", "src/rooms/imports-dev-dependency-types.ts", "vitest"],
      ["not-to-dev-dep", "src/rooms/imports-dev-dependency.ts", "vitest"],
      ["not-to-unresolvable", "src/rooms/imports-missing-module.ts", "./gone.js"],
      ["worker-shell-on-top", "src/rooms/imports-worker.ts", "src/worker/host.ts"],
      ["testing-self-contained", "src/testing/imports-crypto.ts", "src/crypto/allowed.ts"],
      ["testing-self-contained", "src/testing/imports-errors.ts", "src/errors/error.ts"],
    ];
    expect(actual).toEqual(expected.sort(byText));
  });

  it("each fail on the fixture tree, every rule in the config", async () => {
    const options = await extractDepcruiseOptions(CONFIG);
    const rules = (options.ruleSet?.forbidden ?? []).map((rule) => rule.name ?? "(unnamed rule)").sort();
    expect(rules.length).toBeGreaterThan(0);
    const broken = new Set((await violations(FIXTURES)).map((v) => v.rule.name));
    expect(rules.filter((rule) => !broken.has(rule))).toEqual([]);
  });

  it("each say why, and each fail the build", async () => {
    const options = await extractDepcruiseOptions(CONFIG);
    for (const rule of options.ruleSet?.forbidden ?? []) {
      const name = rule.name ?? "(unnamed rule)";
      expect(rule.name).toMatch(/^[a-z-]+$/);
      expect(rule.comment, name).toMatch(/\S.{40,}/);
      expect(rule.severity, name).toBe("error");
    }
  });

  it("find no violation in the real src/", async () => {
    expect((await violations(ROOT)).map(found)).toEqual([]);
  });

  it("are checked by npm test", () => {
    const { scripts } = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(scripts.deps).toContain(".dependency-cruiser.mjs");
    expect(scripts.test).toContain("npm run deps");
  });
});
