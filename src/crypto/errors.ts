/** Codes of the plain `SdkError`s the crypto-wasm wiring throws. */
export type CryptoErrorCode =
  /** Not a valid Matrix user id (crypto-wasm's `UserId` refused it). */
  | "invalid_user_id"
  /** An empty device id. */
  | "invalid_device_id"
  /** The `OlmMachine` the app gave belongs to another user or device. */
  | "olm_machine_mismatch"
  /** The crypto store's name, key or passphrase is unusable (checked before opening it). */
  | "invalid_crypto_store"
  /** A persistent crypto store needs IndexedDB, and this environment has none. */
  | "indexeddb_unavailable"
  /** The crypto store did not open: wrong passphrase or key, or it belongs to another device. */
  | "crypto_store_open_failed"
  /** The server refused some cross-signing signatures (`failures` in `keys/signatures/upload`). */
  | "signature_upload_rejected"
  /** crypto-wasm produced a request type this SDK does not know. */
  | "unknown_outgoing_request"
  /** crypto-wasm produced a request body that is not a JSON object. */
  | "malformed_outgoing_request"
  /** A key query the SDK waited for failed or was not sent: the machine's device list may be stale. */
  | "key_query_failed";
