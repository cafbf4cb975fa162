import type {
  CrossSigningStatus,
  Device,
  OlmMachine,
  SignatureUploadRequest,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { SdkError } from "../errors/sdk-error.js";
import { emptyResponseSchema } from "../http/schemas/empty.js";
import { signaturesUploadResponseSchema } from "../http/schemas/keys.js";
import type { MatrixHttp } from "../http/types.js";
import type { CryptoErrorCode } from "./errors.js";
import { toDeviceId, toUserId } from "./identifiers.js";
import { parseOutgoingBody } from "./request-endpoints.js";
import { sendOutgoingRequest } from "./send-outgoing-request.js";
import {
  type AuthDict,
  type UiaCallback,
  type UiaOptions,
  withUserInteractiveAuth,
} from "./user-interactive-auth.js";

/** Options of `bootstrapCrossSigning`. */
export interface BootstrapCrossSigningOptions {
  machine: OlmMachine;
  http: MatrixHttp;
  /** Answers the server's user-interactive auth challenges for `keys/device_signing/upload`. */
  authCallback?: UiaCallback;
  /**
   * Make new cross-signing keys even if the machine already has them. Replacing the identity drops
   * every verification others made of this user, so it is opt-in; without it an existing identity is
   * (re-)published as is.
   */
  reset?: boolean;
  uia?: UiaOptions;
  signal?: AbortSignal;
}

/** Which private cross-signing keys a machine holds, as a plain value. */
export interface CrossSigningKeyStatus {
  hasMaster: boolean;
  hasSelfSigning: boolean;
  hasUserSigning: boolean;
}

/**
 * Sets up cross-signing (Client-Server API, "Cross-signing"): crypto-wasm makes the keys and the
 * three requests; they go out in the order it prescribes — the device keys if not yet uploaded,
 * then the public cross-signing keys (`keys/device_signing/upload`, behind user-interactive auth),
 * then the signatures over them and this device (`keys/signatures/upload`).
 *
 * Servers let the first upload through without UIA when the user has no master key yet (MSC3967);
 * Synapse also answers 200 at once to a re-upload of identical keys. Replacing keys asks for UIA —
 * on a server with delegated auth (MAS) as the single stage `m.oauth` whose `params` carry a URL
 * where the user approves the reset; the callback opens it and resolves once the user is done.
 */
export async function bootstrapCrossSigning(options: BootstrapCrossSigningOptions): Promise<void> {
  const { machine, http, signal } = options;
  const requests = await machine.bootstrapCrossSigning(options.reset ?? false);
  try {
    // Each getter of `requests` hands out a new wasm copy of the request, freed once read or sent.
    const uploadKeys = requests.uploadKeysRequest;
    if (uploadKeys !== undefined && uploadKeys !== null) {
      try {
        await sendOutgoingRequest(machine, http, uploadKeys, signal);
      } finally {
        uploadKeys.free();
      }
    }

    const signingKeysRequest = requests.uploadSigningKeysRequest;
    let signingKeys: Record<string, unknown>;
    try {
      signingKeys = parseOutgoingBody(signingKeysRequest.body, "device_signing/upload");
    } finally {
      signingKeysRequest.free();
    }
    await withUserInteractiveAuth(
      (auth: AuthDict | undefined) =>
        http.request({
          method: "POST",
          path: "/_matrix/client/v3/keys/device_signing/upload",
          body: auth === undefined ? signingKeys : { ...signingKeys, auth },
          schema: emptyResponseSchema,
          // Each attempt may carry a one-shot auth stage; the UIA loop, not the transport, repeats it.
          retry: "never",
          signal,
        }),
      options.authCallback,
      options.uia,
    );

    const signatures = requests.uploadSignaturesRequest;
    try {
      await uploadSignatures(machine, http, signatures, signal);
    } finally {
      signatures.free();
    }
  } finally {
    requests.free();
  }
}

/**
 * `POST /keys/signatures/upload` for a request crypto-wasm made (bootstrapping, or signing a
 * device), then the response back to the machine. A `failures` entry is a typed error
 * (`signature_upload_rejected`, naming users, key ids and errcodes): a signature the server
 * refused is one nobody will see. The transport may repeat it: a signature stored twice is harmless.
 */
export async function uploadSignatures(
  machine: Pick<OlmMachine, "markRequestAsSent">,
  http: MatrixHttp,
  request: SignatureUploadRequest,
  signal?: AbortSignal,
): Promise<void> {
  const response = await http.request({
    method: "POST",
    path: "/_matrix/client/v3/keys/signatures/upload",
    body: parseOutgoingBody(request.body, "signatures/upload"),
    schema: signaturesUploadResponseSchema,
    retry: "safe",
    signal,
  });
  const failures = response.failures ?? {};
  if (Object.keys(failures).length > 0) {
    throw new SdkError<CryptoErrorCode>(
      "signature_upload_rejected",
      "the server rejected some cross-signing signatures",
      {
        details: { failures: summarizeFailures(failures) },
      },
    );
  }
  // Signatures made outside a verification flow carry no id: the machine tracks nothing to mark.
  if (request.id !== undefined) {
    await machine.markRequestAsSent(request.id, request.type, JSON.stringify(response));
  }
}

/** Which private cross-signing keys this machine holds. */
export async function getCrossSigningStatus(
  machine: Pick<OlmMachine, "crossSigningStatus">,
): Promise<CrossSigningKeyStatus> {
  return readCrossSigningStatus(await machine.crossSigningStatus());
}

/** Copies crypto-wasm's status object into a plain value and frees it. */
export function readCrossSigningStatus(status: CrossSigningStatus): CrossSigningKeyStatus {
  try {
    return {
      hasMaster: status.hasMaster,
      hasSelfSigning: status.hasSelfSigning,
      hasUserSigning: status.hasUserSigning,
    };
  } finally {
    status.free();
  }
}

/**
 * Whether `deviceId` of `userId` carries a valid signature by its owner's self-signing key, as far
 * as the machine knows from its last key query. `undefined` when the machine does not know the
 * device (never queried, or not in the owner's list). MSC3814 requires this check before encrypting
 * to a dehydrated device.
 */
export async function isDeviceCrossSignedByOwner(
  machine: OlmMachine,
  userId: string,
  deviceId: string,
): Promise<boolean | undefined> {
  const user = toUserId(userId);
  const device = toDeviceId(deviceId);
  try {
    const found = await machine.getDevice(user, device);
    if (!found) return undefined;
    try {
      return found.isCrossSignedByOwner();
    } finally {
      found.free();
    }
  } finally {
    user.free();
    device.free();
  }
}

/** Whether the machine knows a cross-signing identity for `userId` (from its last key query). */
export async function hasIdentity(machine: OlmMachine, userId: string): Promise<boolean> {
  const user = toUserId(userId);
  try {
    const identity = await machine.getIdentity(user);
    identity?.free();
    return identity !== undefined;
  } finally {
    user.free();
  }
}

/**
 * Signs the machine's own device with its self-signing key (Client-Server API, "Cross-signing")
 * unless it is signed already, so others see it as cross-signed by its owner. Resolves to whether
 * it is signed afterwards: `false` when the machine does not know its own device yet or holds no
 * self-signing key.
 */
export async function signOwnDevice(
  machine: OlmMachine,
  http: MatrixHttp,
  signal?: AbortSignal,
): Promise<boolean> {
  // Each getter hands out a new wasm id: freed here, not left to the garbage collector.
  const userId = machine.userId;
  const deviceId = machine.deviceId;
  let device: Device | undefined;
  try {
    device = await machine.getDevice(userId, deviceId);
  } finally {
    userId.free();
    deviceId.free();
  }
  if (!device) return false;
  try {
    if (device.isCrossSignedByOwner()) return true;
    if (!(await getCrossSigningStatus(machine)).hasSelfSigning) return false;
    const request = await device.verify();
    try {
      await uploadSignatures(machine, http, request, signal);
    } finally {
      request.free();
    }
    return true;
  } finally {
    device.free();
  }
}

/** User → key ids that failed, with the server's errcode; the signed objects stay out. */
function summarizeFailures(failures: Record<string, Record<string, Record<string, unknown>>>) {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [user, byKey] of Object.entries(failures)) {
    out[user] = Object.fromEntries(Object.entries(byKey).map(([key, err]) => [key, err.errcode]));
  }
  return out;
}
