import { DeviceId, OlmMachine, UserId } from "@matrix-org/matrix-sdk-crypto-wasm";
import { loadCryptoWasm } from "../../../src/crypto/load-wasm.js";
import { createOlmMachine } from "../../../src/crypto/olm-machine.js";
import { exposeScenarios } from "./scenario-protocol.js";

/** Public keys only: safe to hand to the Node side and to print in a failed assertion. */
export interface MachineIdentity {
  userId: string;
  deviceId: string;
  ed25519: string;
  curve25519: string;
}

let machine: OlmMachine | undefined;

function identityOf(m: OlmMachine): MachineIdentity {
  const keys = m.identityKeys;
  return {
    userId: m.userId.toString(),
    deviceId: m.deviceId.toString(),
    ed25519: keys.ed25519.toBase64(),
    curve25519: keys.curve25519.toBase64(),
  };
}

function closeMachine(): void {
  machine?.close();
  machine = undefined;
}

const scenarios = {
  /** crypto-wasm's own entry point, as an app that does not use our wrapper would call it. */
  async openStore(userId: string, deviceId: string, storeName: string, passphrase: string) {
    await loadCryptoWasm();
    closeMachine();
    machine = await OlmMachine.initialize(new UserId(userId), new DeviceId(deviceId), storeName, passphrase);
    return identityOf(machine);
  },

  /** The SDK's wrapper, which maps store failures to `SdkError`s. */
  async openStoreWithSdk(userId: string, deviceId: string, storeName: string, passphrase: string) {
    closeMachine();
    machine = await createOlmMachine({ userId, deviceId, store: { name: storeName, passphrase } });
    return identityOf(machine);
  },

  /** Releases the machine's IndexedDB connections, as an app does before its page goes away. */
  async close() {
    const wasOpen = machine !== undefined;
    closeMachine();
    return wasOpen;
  },

  /** The IndexedDB databases whose names start with `prefix`: where crypto-wasm put the store. */
  async databaseNames(prefix: string) {
    const all = await indexedDB.databases();
    return all
      .map((db) => db.name ?? "")
      .filter((name) => name.startsWith(prefix))
      .sort();
  },
};

export type CryptoWasmScenarios = typeof scenarios;
exposeScenarios(scenarios);
