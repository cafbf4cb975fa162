import { openClient, register } from "../accounts.js";
import type { DemoContext } from "../context.js";
import { DemoError } from "../demo-error.js";
import { watchClient } from "../observe.js";

/**
 * Steps 1 and 2 on Alice's first device: register, set up cross-signing with a new secret-storage
 * key, then create and upload a dehydrated device (MSC3814) and close the app. Both resume from
 * where a failed attempt stopped.
 */

/** Step 1. Returns the recovery key for the page to show once; it is never logged. */
export async function registerAndBootstrap(ctx: DemoContext): Promise<string> {
  const { log } = ctx;
  if (ctx.alice === undefined) {
    const { account, session } = await register(ctx, "alice", "Alice");
    ctx.alice = account;
    ctx.aliceFirst = { session };
    ctx.aliceFirstDeviceId = session.deviceId;
    log.write("info", `Alice registered as ${account.userId}; her first device is ${session.deviceId}`);
  }
  const first = ctx.aliceFirst!;
  if (first.client === undefined) {
    first.client = await openClient(ctx, ctx.alice, first.session, "Alice");
    watchClient(first.client.events, log, "Alice", ctx.retries);
    first.client.events.on("crypto.requestSent", (e) =>
      log.write("info", `Alice · crypto request sent: ${e.kind}`),
    );
    first.client.events.on("dehydration.keyCached", (e) =>
      log.write("info", `Alice · dehydration key cached in the crypto store (${e.source})`),
    );
  }

  const boot = await first.client.crossSigning.bootstrap({ createSecretStorageKey: true });
  if (boot.recoveryKey === undefined || boot.secretStorageKey === undefined) {
    throw new DemoError("no_secret_storage_key", "bootstrapping made no secret-storage key");
  }
  first.secretStorageKey = boot.secretStorageKey;
  log.write("ok", "Alice published her cross-signing identity (master, self-signing, user-signing keys)");
  log.write(
    "ok",
    `secret storage: new default key "${boot.secretStorageKey.keyId}" now holds ` +
      `${boot.storedInSecretStorage.length} private cross-signing keys`,
  );
  log.write("info", "the recovery key is shown once on the page, never in this log");
  return boot.recoveryKey;
}

/** Step 2: the dehydrated device goes up in one PUT; then Alice closes her app. */
export async function uploadDehydratedDeviceAndLeave(ctx: DemoContext): Promise<void> {
  const { log } = ctx;
  const first = ctx.aliceFirst;
  if (first?.client === undefined || first.secretStorageKey === undefined)
    throw new DemoError("out_of_order", "run step 1 first");
  const dehydration = first.client.dehydration;

  if (ctx.dehydratedDeviceId === undefined) {
    if (!(await dehydration.isSupported())) {
      throw new DemoError("unsupported", "this server profile has no MSC3814 support");
    }
    // With no device on the server, `replaceNow` uploads the first one.
    const { deviceId } = await dehydration.replaceNow({ secretStorageKey: first.secretStorageKey });
    ctx.dehydratedDeviceId = deviceId;
    log.write(
      "ok",
      `dehydrated device ${deviceId} uploaded (PUT dehydrated_device: device keys, one-time keys, ` +
        "fallback key and the pickled account, encrypted with the dehydration key)",
    );
    log.write(
      "info",
      "the dehydration key lives in secret storage (org.matrix.msc3814 and m.dehydrated_device)",
    );
  }

  const { device: status } = await dehydration.status();
  log.write(
    status.status === "valid" ? "ok" : "warn",
    `the server lists it as Alice's device: ${status.status === "valid" ? "cross-signed by her" : status.status}`,
  );

  first.secretStorageKey.key.fill(0);
  await first.client.close();
  ctx.aliceFirst = undefined;
  log.write("info", "Alice closes the app: none of her devices is online from now on");
}
