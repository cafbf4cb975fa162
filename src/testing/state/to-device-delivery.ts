import type { ServerState } from "./server-state.js";

/**
 * Where the messages of a `sendToDevice` body go on this server (Client-Server spec,
 * "Send-to-Device messaging"), shared by the route and `MockControl.sendToDeviceAs` so that a
 * message the server makes up reaches exactly the devices a client's message would.
 */

/** A `sendToDevice` body's `messages`: user id → device id (or `"*"`) → content. */
export type ToDeviceMessages = Record<string, Record<string, Record<string, unknown>>>;

/**
 * The devices of `userId` (a user of this server or of a hosted remote one) that `byDevice` reaches, each with its content: `"*"` as
 * the only device id means every device of the user, the dehydrated and injected ones included;
 * next to other ids it is just an unknown id. Unknown devices are dropped, as Synapse drops them.
 */
export function localRecipients(
  state: ServerState,
  userId: string,
  byDevice: Record<string, Record<string, unknown>>,
): [deviceId: string, content: Record<string, unknown>][] {
  const deviceIds = Object.keys(byDevice);
  if (deviceIds.length === 1 && deviceIds[0] === "*") {
    return state.accounts.deviceIds(userId).map((deviceId) => [deviceId, byDevice["*"]!]);
  }
  return deviceIds
    .filter((deviceId) => state.accounts.hasDevice(userId, deviceId))
    .map((deviceId) => [deviceId, byDevice[deviceId]!]);
}
