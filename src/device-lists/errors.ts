/**
 * Codes of the plain `SdkError`s of `client.deviceLists`: `invalid_argument` (a call's input is
 * malformed; nothing was done) and `server_unreachable` (in a `failed` trust's `error`: the
 * homeserver listed the user's server in `keys/query` `failures`).
 */
export type DeviceListErrorCode = "invalid_argument" | "server_unreachable";
