import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import type { MatrixHttp } from "../http/types.js";
import { httpCallFor, type OutgoingRequest } from "./request-endpoints.js";

/** The two machine methods the request plumbing needs; lets a caller wrap or observe a machine. */
export type RequestMachine = Pick<OlmMachine, "outgoingRequests" | "markRequestAsSent">;

/**
 * Sends one crypto-wasm request through the transport and hands the validated response back to the
 * machine; returns that response. Throws what the transport throws; the caller decides whether that
 * is an event or an error.
 */
export async function sendOutgoingRequest(
  machine: RequestMachine,
  http: MatrixHttp,
  request: OutgoingRequest,
  signal?: AbortSignal,
): Promise<unknown> {
  const call = httpCallFor(request);
  const response = await http.request({
    method: call.method,
    path: call.path,
    query: call.query,
    body: call.body,
    schema: call.schema,
    retry: call.retry,
    signal,
  });
  // Signature uploads made outside a verification flow carry no id; the machine tracks nothing for
  // them, so there is nothing to mark.
  if (request.id !== undefined) {
    await machine.markRequestAsSent(request.id, request.type, JSON.stringify(response));
  }
  return response;
}
