import { SdkError } from "../errors/sdk-error.js";
import type { SecretStorageSetupErrorCode } from "./errors.js";

/**
 * WebCrypto's `subtle`, present in browsers, Electron and Node ≥ 22. crypto-wasm offers no
 * secret-storage primitives, so secret storage depends on it; without it the error says so
 * instead of failing on `undefined`.
 */
export function subtleCrypto(): SubtleCrypto {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) {
    throw new SdkError<SecretStorageSetupErrorCode>(
      "webcrypto_unavailable",
      "WebCrypto (globalThis.crypto.subtle) is not available in this environment",
    );
  }
  return subtle;
}
