import { z } from "zod";
import type { Profile } from "../profiles.js";
import { MatrixError, type MockResponse, type Route, type RouteContext } from "../route.js";
import { canonicalJson } from "../state/canonical-json.js";
import type { ServerState } from "../state/server-state.js";
import { localRecipients } from "../state/to-device-delivery.js";
import { parseBody } from "../validation.js";
import { clientRoute } from "./client-route.js";
import { serverNameOf } from "./matrix-ids.js";

/**
 * `PUT /sendToDevice/{eventType}/{txnId}` (Client-Server spec, "Send-to-Device messaging"), as
 * Synapse's `SendToDeviceRestServlet` and `add_messages_to_device_inbox` behave:
 * - idempotent per sending device and request path (event type + txnId; MSC3970): a repeat within
 *   30 minutes (Synapse's `HttpTransactionCache`, synapse/rest/client/transactions.py) is answered
 *   200 and delivers nothing, a later one is a new send; a send that failed is not remembered;
 * - `"*"` as the only device id means every device of the user; next to other ids it is just an
 *   unknown device id;
 * - messages for devices that do not exist, and for malformed user ids, are dropped silently;
 * - one message over 64 KiB of canonical JSON fails the whole request with 413 `M_TOO_LARGE`;
 * - users on servers the mock does not host are dropped too; those of hosted remote servers get
 *   the message at once (`state/remote-device-lists.ts`: to-device crosses servers unhindered).
 */

type Ctx = RouteContext<ServerState, Profile>;

/** Synapse `MAX_TO_DEVICE_CONTENT_SIZE` (= `SOFT_MAX_EDU_SIZE`). */
export const MAX_TO_DEVICE_CONTENT_BYTES = 65_536;

const sendSchema = z.looseObject({
  messages: z.record(z.string(), z.record(z.string(), z.record(z.string(), z.unknown()))),
});

const utf8 = new TextEncoder();

function sendToDevice(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  const { state } = ctx;
  const eventType = ctx.params.eventType ?? "";
  const transactionKey = `${eventType}\u0000${ctx.params.txnId ?? ""}`;
  if (state.toDevice.hasTransaction(caller.userId, caller.deviceId, transactionKey)) {
    return { status: 200, body: {} };
  }
  const { messages } = parseBody(ctx, sendSchema);

  const deliveries: [userId: string, deviceId: string, content: Record<string, unknown>][] = [];
  for (const [userId, byDevice] of Object.entries(messages)) {
    const server = serverNameOf(userId);
    if (server === undefined) continue;
    for (const [deviceId, content] of Object.entries(byDevice)) {
      const size = utf8.encode(canonicalJson(content)).length;
      if (size > MAX_TO_DEVICE_CONTENT_BYTES) {
        throw new MatrixError(
          413,
          "M_TOO_LARGE",
          `To-device message for ${userId}:${deviceId} is too large to send (${size} > ${MAX_TO_DEVICE_CONTENT_BYTES})`,
        );
      }
    }
    if (!state.remoteDeviceLists.hosts(server)) continue;
    for (const [deviceId, content] of localRecipients(state, userId, byDevice)) {
      deliveries.push([userId, deviceId, content]);
    }
  }

  for (const [userId, deviceId, content] of deliveries) {
    state.toDevice.enqueue(userId, deviceId, { type: eventType, sender: caller.userId, content });
  }
  state.toDevice.recordTransaction(caller.userId, caller.deviceId, transactionKey);
  return { status: 200, body: {} };
}

export const toDeviceRoutes: Route<ServerState, Profile>[] = [
  clientRoute("PUT", "sendToDevice/{eventType}/{txnId}", sendToDevice),
];
