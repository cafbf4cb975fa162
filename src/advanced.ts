/**
 * `matrix-e2ee-devices/advanced`: what an app beside the client may need — the wire names this SDK
 * reads and writes, its defaults, the recovery-key codec, and the crypto-wasm loader — for
 * interoperating with another client's data or building its own `OlmMachine`. Stable like the root
 * entry point; the client itself needs none of it.
 */
export { loadCryptoWasm } from "./crypto/load-wasm.js";
export {
  DEFAULT_DEHYDRATED_DEVICE_DISPLAY_NAME,
  DEHYDRATION_KEY_SECRET_NAMES,
} from "./dehydration/device/names.js";
export { defaultPaginationLimits } from "./dehydration/drain/pagination.js";
export { defaultRotateEveryMs } from "./dehydration/rotation/rotation-plan.js";
export { defaultRetryConfig } from "./http/retry-policy.js";
export { CROSS_SIGNING_SECRET_NAMES } from "./secret-storage/cross-signing-secrets.js";
export { secretStorageKey } from "./secret-storage/key-holder.js";
export { decodeRecoveryKey, encodeRecoveryKey } from "./secret-storage/recovery-key.js";
