import { isSdkError } from "../../../src/errors/sdk-error.js";
import { createE2eeWorkerClient, type E2eeWorkerClient } from "../../../src/worker/browser.js";
import { describeError, exposeScenarios, type PageErrorInfo } from "./scenario-protocol.js";

/**
 * `createE2eeWorkerClient` from `src/worker/browser.ts` as an app's page uses it: the client runs
 * in a module Web Worker (started by the SDK's own `new Worker(new URL(…, import.meta.url))`) and
 * talks to the mock homeserver in the test's Node process over HTTP. Tokens and keys stay in the page.
 */

export interface WorkerSession {
  baseUrl: string;
  userId: string;
  deviceId: string;
  accessToken: string;
}

const dummyAuth = async () => ({ type: "m.login.dummy" });
const clients = new Map<string, E2eeWorkerClient>();

function live(name: string): E2eeWorkerClient {
  const client = clients.get(name);
  if (client === undefined) throw new Error(`no worker client named ${name} is open`);
  return client;
}

/** The error a promise rejects with, as data, with whether it is an `SdkError` on this thread. */
async function rejection(
  promise: Promise<unknown>,
): Promise<(PageErrorInfo & { isSdkError: boolean }) | null> {
  try {
    await promise;
    return null;
  } catch (error) {
    return { ...describeError(error), isSdkError: isSdkError(error) };
  }
}

const scenarios = {
  /**
   * One worker client, end to end: cross-signing bootstrap (UIA answered on this thread), the
   * events it emits in the worker heard here, a typed error, a key that prints only its id, and
   * `close()` after which calls fail with `client_closed`.
   */
  async bootstrapAndClose(session: WorkerSession) {
    const client = await createE2eeWorkerClient({ ...session, uiaCallback: dummyAuth });
    const events: string[] = [];
    client.events.onAny((name) => events.push(name));
    await client.processOutgoingRequests();
    const boot = await client.crossSigning.bootstrap({ createSecretStorageKey: true });
    const key = boot.secretStorageKey;
    if (key === undefined) throw new Error("bootstrap created no secret-storage key");
    const keyBytes = [...key.key].join(",");
    const printed = { string: String(key), json: JSON.stringify(key), template: `${key}` };
    const status = await client.crossSigning.status();
    const trustBob = await client.deviceLists.trust("@bob:localhost");
    const badTrust = await rejection(client.deviceLists.trust("bob"));
    await client.close();
    const afterClose = await rejection(client.crossSigning.status());
    return {
      ids: { userId: client.userId, deviceId: client.deviceId },
      events,
      keyId: key.keyId,
      keyLength: key.key.length,
      printed,
      // Whether any printed form holds the key's bytes (as a decimal list: the form `String(bytes)` gives).
      printedHoldsBytes: Object.values(printed).some((text) => text.includes(keyBytes)),
      recoveryKeyShape: /^E/.test(boot.recoveryKey ?? ""),
      hasMaster: status.hasMaster,
      trustBob,
      badTrust,
      afterClose,
    };
  },

  /** Opens a named worker client on a named IndexedDB crypto store. */
  async openOnStore(name: string, session: WorkerSession, storeName: string) {
    const client = await createE2eeWorkerClient({
      ...session,
      uiaCallback: dummyAuth,
      cryptoStore: { name: storeName, passphrase: "the worker test's store passphrase" },
    });
    clients.set(name, client);
    await client.processOutgoingRequests();
    return { userId: client.userId, deviceId: client.deviceId };
  },

  /** `openOnStore` that must fail: the error as data. */
  async openOnStoreFails(session: WorkerSession, storeName: string) {
    return rejection(
      createE2eeWorkerClient({
        ...session,
        uiaCallback: dummyAuth,
        cryptoStore: { name: storeName, passphrase: "the worker test's store passphrase" },
      }),
    );
  },

  async crossSigningStatus(name: string) {
    return live(name).crossSigning.status();
  },

  async closeClient(name: string) {
    await live(name).close();
    clients.delete(name);
  },
};

export type WorkerClientScenarios = typeof scenarios;
exposeScenarios(scenarios);
