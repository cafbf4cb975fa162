import {
  type KeysBackupRequest,
  type KeysClaimRequest,
  type KeysQueryRequest,
  type KeysUploadRequest,
  type OlmMachine,
  RequestType,
  type RoomMessageRequest,
  type SignatureUploadRequest,
  type ToDeviceRequest,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import type { z } from "zod";
import { SdkError } from "../errors/sdk-error.js";
import { matrixPath } from "../http/path.js";
import { emptyResponseSchema } from "../http/schemas/empty.js";
import {
  keysBackupResponseSchema,
  keysClaimResponseSchema,
  keysQueryResponseSchema,
  keysUploadResponseSchema,
  signaturesUploadResponseSchema,
} from "../http/schemas/keys.js";
import { roomSendResponseSchema } from "../http/schemas/rooms.js";
import type { HttpMethod, RetryMode } from "../http/types.js";
import type { CryptoErrorCode } from "./errors.js";

/** One element of what `OlmMachine.outgoingRequests()` returns. */
export type OutgoingRequest = Awaited<ReturnType<OlmMachine["outgoingRequests"]>>[number];

/** crypto-wasm's `RequestType` names, as events and logs report them. */
export type OutgoingRequestKind =
  | "KeysUpload"
  | "KeysQuery"
  | "KeysClaim"
  | "ToDevice"
  | "SignatureUpload"
  | "RoomMessage"
  | "KeysBackup";

/** The HTTP call that carries one outgoing request; a pure description, nothing is sent. */
export interface OutgoingHttpCall {
  kind: OutgoingRequestKind;
  method: HttpMethod;
  path: string;
  query?: Record<string, string>;
  body: unknown;
  retry: RetryMode;
  schema: z.ZodType;
}

const CLIENT_V3 = "/_matrix/client/v3";

/**
 * Maps a crypto-wasm request to its Client-Server API endpoint and decides whether the transport may
 * repeat it automatically. The retry decisions:
 *
 * - `keys/query`: read-only — safe.
 * - `keys/claim`: NEVER. Each claim removes one-time keys on the server; a replay after a lost
 *   response burns keys the machine never sees, and the machine decides itself whether to claim anew.
 * - `keys/upload`: safe. crypto-wasm re-issues the identical body (same unpublished keys, new request
 *   id) until one is marked as sent, so a retry adds no replay the loop would not make anyway. Synapse
 *   accepts an identical one-time key again as a no-op and answers 400 only when the same key id comes
 *   with a different key (`handlers/e2e_keys.py`, `_one_time_keys_match`), which no retry of the same
 *   body can cause — and a 400 is permanent for the transport anyway.
 * - `sendToDevice`, `rooms/…/send`: idempotent per access token + txnId (spec: "Transaction
 *   identifiers") — safe. For to-device the request id *is* the txnId.
 * - `keys/signatures/upload`: safe. Storing the same signature twice is harmless (Synapse keeps
 *   duplicate rows and merges them by key id on read).
 * - `room_keys/keys` PUT: replaces the same sessions with the same data — safe.
 */
export function httpCallFor(request: OutgoingRequest): OutgoingHttpCall {
  switch (request.type) {
    case RequestType.KeysUpload:
      return post(
        "KeysUpload",
        "/keys/upload",
        (request as KeysUploadRequest).body,
        "safe",
        keysUploadResponseSchema,
      );
    case RequestType.KeysQuery:
      return post(
        "KeysQuery",
        "/keys/query",
        (request as KeysQueryRequest).body,
        "safe",
        keysQueryResponseSchema,
      );
    case RequestType.KeysClaim:
      return post(
        "KeysClaim",
        "/keys/claim",
        (request as KeysClaimRequest).body,
        "never",
        keysClaimResponseSchema,
      );
    case RequestType.SignatureUpload:
      return post(
        "SignatureUpload",
        "/keys/signatures/upload",
        (request as SignatureUploadRequest).body,
        "safe",
        signaturesUploadResponseSchema,
      );
    case RequestType.ToDevice: {
      const r = request as ToDeviceRequest;
      return put(
        "ToDevice",
        matrixPath`/_matrix/client/v3/sendToDevice/${r.event_type}/${r.txn_id}`,
        r.body,
        emptyResponseSchema,
      );
    }
    case RequestType.RoomMessage: {
      const r = request as RoomMessageRequest;
      return put(
        "RoomMessage",
        matrixPath`/_matrix/client/v3/rooms/${r.room_id}/send/${r.event_type}/${r.txn_id}`,
        r.body,
        roomSendResponseSchema,
      );
    }
    case RequestType.KeysBackup: {
      const r = request as KeysBackupRequest;
      return {
        ...put("KeysBackup", `${CLIENT_V3}/room_keys/keys`, r.body, keysBackupResponseSchema),
        query: { version: r.version },
      };
    }
    default:
      throw new SdkError<CryptoErrorCode>(
        "unknown_outgoing_request",
        "crypto-wasm produced a request type this SDK does not know",
        {
          details: { type: (request as { type: unknown }).type },
        },
      );
  }
}

/** The request kind's name, for events and logs. */
export function outgoingRequestKind(request: OutgoingRequest): OutgoingRequestKind | "Unknown" {
  const name = RequestType[request.type] as string | undefined;
  return name === undefined ? "Unknown" : (name as OutgoingRequestKind);
}

function post(
  kind: OutgoingRequestKind,
  endpoint: string,
  body: string,
  retry: RetryMode,
  schema: z.ZodType,
): OutgoingHttpCall {
  return {
    kind,
    method: "POST",
    path: `${CLIENT_V3}${endpoint}`,
    body: parseOutgoingBody(body, kind),
    retry,
    schema,
  };
}

/** Every PUT this SDK sends is idempotent per path (txnId, or the same sessions): see above. */
function put(kind: OutgoingRequestKind, path: string, body: string, schema: z.ZodType): OutgoingHttpCall {
  return { kind, method: "PUT", path, body: parseOutgoingBody(body, kind), retry: "safe", schema };
}

/**
 * The JSON object body of a request crypto-wasm made. Every Client-Server request body is an
 * object, so anything else is `malformed_outgoing_request` — with no `cause` and no excerpt: the
 * parser's message quotes its input, and the body holds keys.
 */
export function parseOutgoingBody(body: string, what: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new SdkError<CryptoErrorCode>(
      "malformed_outgoing_request",
      `crypto-wasm produced a ${what} body that is not a JSON object`,
    );
  }
  return parsed as Record<string, unknown>;
}
