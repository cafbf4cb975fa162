import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { canonicalJson } from "../../../src/testing/index.js";

/**
 * Device keys as a real device publishes them, signed with the device's own Ed25519 key (spec,
 * "Signing JSON"), made with Node's crypto instead of a crypto-wasm machine per device: crypto-wasm
 * accepts them (it checks the self-signature), and a thousand cost milliseconds.
 */
export function signedDeviceKeys(userId: string, deviceId: string): Record<string, unknown> {
  const ed = generateKeyPairSync("ed25519");
  const x = generateKeyPairSync("x25519");
  const unsigned = {
    user_id: userId,
    device_id: deviceId,
    algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
    keys: {
      [`curve25519:${deviceId}`]: rawPublic(x.publicKey),
      [`ed25519:${deviceId}`]: rawPublic(ed.publicKey),
    },
  };
  const signature = sign(null, Buffer.from(canonicalJson(unsigned)), ed.privateKey);
  return { ...unsigned, signatures: { [userId]: { [`ed25519:${deviceId}`]: unpadded(signature) } } };
}

function rawPublic(key: KeyObject): string {
  const jwk = key.export({ format: "jwk" }) as { x: string };
  return unpadded(Buffer.from(jwk.x, "base64url"));
}

function unpadded(bytes: Buffer): string {
  return bytes.toString("base64").replace(/=+$/, "");
}
