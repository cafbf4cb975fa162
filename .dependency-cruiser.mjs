// The layering of src/, checked by `npm run deps` (part of `npm test`). Every rule here is an
// error: a broken layer fails the build. Paths are relative to the folder the cruise runs in, so
// the same rules apply to the fixture tree in test/architecture/fixtures/, which proves each one
// can fail.
//
// The layers, bottom up:
//   foundations   src/errors, src/events, src/time, src/logger.ts
//   transport     src/http (may use foundations only)
//   storage       src/state
//   crypto        src/crypto (foundations, transport, storage)
//   features      every other folder: src/dehydration, src/secret-storage, and any added later
//   facade        src/client.ts, imported only by src/index.ts, the package's entry point, and by
//                 src/worker, the shell that runs the facade inside a worker (its own entry points)
//   mock server   src/testing, a separate entry point, standing alone on src/time

/** Foundations every layer may use. */
const FOUNDATIONS = "^src/(errors|events|time)/|^src/logger[.]ts$";

/** @type {import("dependency-cruiser").IConfiguration} */
export default {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment:
        "A module reaches itself again through its imports. Cycles make load order matter and tie the " +
        "modules on them into one unit; move the shared types or definitions into a module both sides import.",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "http-only-transport",
      severity: "error",
      comment:
        "src/http is the transport: it may import only src/http, src/errors, src/events, src/time and " +
        "src/logger.ts. Crypto, features (dehydration, secret storage, cross-signing, sync, rooms, device " +
        "lists, and any folder added later), the facade and the mock server build on it, never the reverse.",
      from: { path: "^src/http/" },
      to: { path: "^src/", pathNot: `^src/http/|${FOUNDATIONS}` },
    },
    {
      name: "crypto-no-features",
      severity: "error",
      comment:
        "src/crypto may import only src/crypto, the transport (src/http), storage (src/state) and the " +
        "foundations (src/errors, src/events, src/time, src/logger.ts). Features (dehydration, secret " +
        "storage, cross-signing, sync, rooms, device lists, and any folder added later) build on crypto, " +
        "so crypto importing one of them, or the facade, inverts the layering.",
      from: { path: "^src/crypto/" },
      to: { path: "^src/", pathNot: `^src/(crypto|http|state)/|${FOUNDATIONS}` },
    },
    {
      name: "no-facade-import",
      severity: "error",
      comment:
        "src/client.ts is the facade that wires the features together; only the entry point src/index.ts " +
        "and the worker shell src/worker (which runs the facade in a worker) import it. A feature importing " +
        "the facade makes every feature depend on every other one.",
      from: { path: "^src/", pathNot: "^src/index[.]ts$|^src/worker/" },
      to: { path: "^src/client[.]ts$" },
    },
    {
      name: "worker-shell-on-top",
      severity: "error",
      comment:
        "src/worker runs the whole client in a worker and is reached only through its own entry points " +
        "(matrix-e2ee-devices/worker): the facade and the features never import it, or the client would " +
        "depend on the code that wraps it.",
      from: { path: "^src/", pathNot: "^src/worker/" },
      to: { path: "^src/worker/" },
    },
    {
      name: "no-entry-point-import",
      severity: "error",
      comment:
        "src/index.ts is the package's public entry point; nothing inside the package imports it. " +
        "Import the module that defines the thing instead.",
      from: {},
      to: { path: "^src/index[.]ts$" },
    },
    {
      name: "testing-self-contained",
      severity: "error",
      comment:
        "src/testing (the mock homeserver, shipped as the separate entry point matrix-e2ee-devices/testing) " +
        "may import nothing from src/ outside src/testing except src/time: a mock that reuses the SDK's " +
        "code would agree with the SDK's bugs instead of exposing them.",
      from: { path: "^src/testing/" },
      to: { path: "^src/", pathNot: "^src/(testing|time)/" },
    },
    {
      name: "not-to-dev-dep",
      severity: "error",
      comment:
        "src/ ships to consumers, who do not install devDependencies. A package src/ imports (even for " +
        "types only, which end up in the published .d.ts files) belongs in dependencies or " +
        "peerDependencies; a peer dependency that is also a devDependency, for this repo's own tests, is fine.",
      from: { path: "^src/" },
      to: { dependencyTypes: ["npm-dev"], dependencyTypesNot: ["npm-peer"] },
    },
    {
      name: "no-non-package-json",
      severity: "error",
      comment:
        "src/ imports a package that is not in package.json: it resolves here only because something else " +
        "installed it, and will not for consumers. Add it to dependencies or peerDependencies.",
      from: { path: "^src/" },
      to: { dependencyTypes: ["npm-no-pkg", "npm-unknown"] },
    },
    {
      name: "not-to-unresolvable",
      severity: "error",
      comment:
        "An import that resolves to no file or package: a typo, a moved module, or a package that is " +
        "not installed.",
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    // Type-only imports count too: they tie modules together just as much, and cycles through them
    // are still cycles.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    // Resolve packages the way Node's ESM loader does.
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "types", "node", "default"],
      mainFields: ["module", "main", "types"],
    },
  },
};
