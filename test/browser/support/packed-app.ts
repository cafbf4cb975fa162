import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { build, preview } from "vite";

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** The package's runtime dependencies (and its crypto-wasm peer), linked from the repo's node_modules. */
const DEPENDENCIES = ["@matrix-org/matrix-sdk-crypto-wasm", "@scure/base", "comlink", "ky", "zod"] as const;

export interface PackedApp {
  /** Where the built app is served: `http://127.0.0.1:<port>`, its page at `/index.html`. */
  readonly origin: string;
  /** The tarball `npm pack` made (inside the temporary directory). */
  readonly tarball: string;
  /** How long each step took, in ms. */
  readonly timings: Record<"compile" | "pack" | "bundle", number>;
  close(): Promise<void>;
}

/**
 * The scratch app: it imports `createE2eeWorkerClient` from `matrix-e2ee-devices/worker` as an
 * app would, and exposes one scenario in the page protocol (`window.__browserTest`, see
 * pages/scenario-protocol.ts) so `openScenarioPage` can drive it. Plain JavaScript: it is built by
 * Vite from the package alone, with no TypeScript and nothing from `src/`.
 */
const APP_MAIN = `import { createE2eeWorkerClient } from "matrix-e2ee-devices/worker";

const scenarios = {
  async openClient(session) {
    const client = await createE2eeWorkerClient({ ...session, uiaCallback: async () => ({ type: "m.login.dummy" }) });
    const events = [];
    client.events.onAny((name) => events.push(name));
    await client.processOutgoingRequests();
    const status = await client.crossSigning.status();
    const badTrust = await client.deviceLists.trust("bob").then(() => null, (e) => ({ name: e.name, code: e.code }));
    await client.close();
    return { userId: client.userId, deviceId: client.deviceId, hasMaster: status.hasMaster, events, badTrust };
  },
};

window.__browserTest = {
  names: Object.keys(scenarios),
  async run(name, args) {
    try {
      return { ok: true, value: await scenarios[name](...args) };
    } catch (error) {
      return { ok: false, error: { name: error?.name ?? typeof error, code: error?.code, message: String(error?.message ?? error) } };
    }
  },
};
`;

const APP_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <link rel="icon" href="data:," />
    <title>A scratch app on the packed matrix-e2ee-devices</title>
    <script type="module" src="./main.js"></script>
  </head>
  <body></body>
</html>
`;

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await work();
  return [value, performance.now() - start];
}

/** npm next to this Node (how it is installed), else the one on PATH. */
function npmCommand(): string {
  const beside = join(dirname(process.execPath), "npm");
  return existsSync(beside) ? beside : "npm";
}

/**
 * Packs the package as it would be published and builds a scratch app on the tarball with Vite:
 *
 * 1. `src/` compiled to JavaScript with `tsconfig.build.json` into a staging copy of the package
 *    (`--noCheck`, no declarations: the bundler needs neither, and `npm run typecheck` checks the
 *    types). The repo's own `dist/` is left alone.
 * 2. `npm pack --ignore-scripts` of that copy into the temporary directory.
 * 3. The tarball unpacked into the app's `node_modules/matrix-e2ee-devices`, its dependencies
 *    linked from the repo's (no registry), and `vite build` of the app with Vite's defaults.
 * 4. `vite preview` serves the result on 127.0.0.1.
 */
export async function buildPackedApp(): Promise<PackedApp> {
  const dir = await mkdtemp(join(tmpdir(), "matrix-e2ee-devices-packed-"));
  try {
    const staging = join(dir, "package");
    const [, compile] = await timed(async () => {
      await run(
        process.execPath,
        [
          join(repoRoot, "node_modules/typescript/bin/tsc"),
          "-p",
          join(repoRoot, "tsconfig.build.json"),
          "--outDir",
          join(staging, "dist"),
          "--noCheck",
          "--declaration",
          "false",
        ],
        { cwd: repoRoot },
      );
      for (const file of ["package.json", "README.md", "LICENSE"]) {
        await cp(join(repoRoot, file), join(staging, file));
      }
    });

    const [tarball, pack] = await timed(async () => {
      await run(npmCommand(), ["pack", "--ignore-scripts", "--silent", "--pack-destination", dir], {
        cwd: staging,
      });
      const name = (await readdir(dir)).find((f) => f.endsWith(".tgz"));
      if (name === undefined) throw new Error("npm pack wrote no tarball");
      return join(dir, name);
    });

    const app = join(dir, "app");
    const [, bundle] = await timed(async () => {
      const installed = join(app, "node_modules/matrix-e2ee-devices");
      await mkdir(installed, { recursive: true });
      await run("tar", ["-xzf", tarball, "-C", installed, "--strip-components=1"]);
      for (const dep of DEPENDENCIES) {
        const link = join(app, "node_modules", dep);
        await mkdir(dirname(link), { recursive: true });
        await symlink(join(repoRoot, "node_modules", dep), link, "dir");
      }
      await writeFile(
        join(app, "package.json"),
        '{ "name": "scratch-app", "private": true, "type": "module" }\n',
      );
      await writeFile(join(app, "index.html"), APP_HTML);
      await writeFile(join(app, "main.js"), APP_MAIN);
      await build({
        root: app,
        configFile: false,
        logLevel: "warn",
        cacheDir: join(app, "node_modules/.vite"),
        build: { outDir: join(app, "dist"), emptyOutDir: true },
      });
    });

    const server = await preview({
      root: app,
      configFile: false,
      logLevel: "warn",
      build: { outDir: join(app, "dist") },
      preview: { host: "127.0.0.1", port: 0, strictPort: false },
    });
    const address = server.httpServer.address() as AddressInfo | null;
    if (address === null || typeof address !== "object") {
      await server.close();
      throw new Error("vite preview did not report a listening address");
    }
    return {
      origin: `http://127.0.0.1:${address.port}`,
      tarball,
      timings: { compile, pack, bundle },
      async close() {
        try {
          await server.close();
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
