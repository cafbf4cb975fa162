import { z } from "zod";
import type { Profile } from "../profiles.js";
import { MatrixError, type MockResponse, type Route, type RouteContext } from "../route.js";
import { canonicalJson } from "../state/canonical-json.js";
import type { CrossSigningUsage, JsonObject } from "../state/key-store.js";
import type { ServerState } from "../state/server-state.js";
import { requireUia, userVerificationFlows } from "../uia.js";
import { jsonObjectBody, parseBody } from "../validation.js";
import { clientRoute } from "./client-route.js";
import { requireUserId } from "./matrix-ids.js";

/**
 * `keys/device_signing/upload` and `keys/signatures/upload` (Client-Server spec, "Cross-signing"),
 * following Synapse's `SigningKeyUploadServlet` and `upload_signatures_for_device_keys`: the same
 * structural checks, error codes and `failures` shapes. Like the rest of the mock it does not check
 * signatures cryptographically — it checks that the required signature is *there*.
 */

type Ctx = RouteContext<ServerState, Profile>;

const USAGES: readonly [CrossSigningUsage, string][] = [
  ["master", "master_key"],
  ["self_signing", "self_signing_key"],
  ["user_signing", "user_signing_key"],
];

const jsonObject = z.record(z.string(), z.unknown());
const signingUploadSchema = z.looseObject({
  master_key: jsonObject.optional(),
  self_signing_key: jsonObject.optional(),
  user_signing_key: jsonObject.optional(),
  auth: z.unknown().optional(),
});

/** An unpadded-base64 Ed25519 public key: 32 bytes → 43 characters. */
const ED25519_PUBLIC_KEY = /^[A-Za-z0-9+/]{43}$/;

function uploadSigningKeys(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  const body = parseBody(ctx, signingUploadSchema);
  const { keys } = ctx.state;
  const uploads: Partial<Record<CrossSigningUsage, JsonObject>> = {};
  for (const [usage, field] of USAGES) {
    const key = body[field as keyof typeof body] as JsonObject | undefined;
    if (key !== undefined) uploads[usage] = key;
  }

  // Re-sending exactly the stored keys is a no-op that needs no UIA (Synapse `has_different_keys`).
  const different = USAGES.some(
    ([usage]) =>
      uploads[usage] !== undefined && !keys.hasSameCrossSigningKey(caller.userId, usage, uploads[usage]),
  );
  if (!different) return { status: 200, body: {} };

  // First-time setup needs no UIA (MSC3967); replacing an existing identity does.
  if (keys.crossSigningPublicKey(caller.userId, "master") !== undefined) {
    requireUia(ctx, body.auth, { flows: userVerificationFlows(ctx.profile), userId: caller.userId });
  }

  let masterPublicKey: string | undefined;
  if (uploads.master) {
    checkCrossSigningKey(uploads.master, caller.userId, "master");
    masterPublicKey = ed25519PublicKey(uploads.master);
    if (masterPublicKey === undefined) throw new MatrixError(400, "M_INVALID_PARAM", "Invalid master key");
  } else {
    masterPublicKey = keys.crossSigningPublicKey(caller.userId, "master");
  }
  if (masterPublicKey === undefined) {
    throw new MatrixError(400, "M_MISSING_PARAM", "No master key available");
  }
  // The other two keys must carry the master key's signature (Synapse verifies it; the mock checks presence).
  for (const usage of ["self_signing", "user_signing"] as const) {
    const key = uploads[usage];
    if (!key) continue;
    checkCrossSigningKey(key, caller.userId, usage);
    if (typeof signatureBy(key, caller.userId, `ed25519:${masterPublicKey}`) !== "string") {
      throw new MatrixError(400, "M_INVALID_SIGNATURE", `Invalid signature on ${usage} key`);
    }
    if (ed25519PublicKey(key) === undefined) {
      throw new MatrixError(400, "M_INVALID_PARAM", `Invalid ${usage} key`);
    }
  }

  keys.setCrossSigningKeys(caller.userId, uploads);
  return { status: 200, body: {} };
}

/** Synapse `_check_cross_signing_key`: the right owner, the right usage, exactly one key. */
function checkCrossSigningKey(key: JsonObject, userId: string, usage: CrossSigningUsage): void {
  const usages = key.usage;
  const publicKeys = key.keys;
  const ok =
    key.user_id === userId &&
    Array.isArray(usages) &&
    usages.includes(usage) &&
    isObject(publicKeys) &&
    Object.keys(publicKeys).length === 1;
  if (!ok) throw new MatrixError(400, "M_INVALID_PARAM", `Invalid ${usage} key`);
}

/** The public key of a well-formed `{"keys": {"ed25519:<pub>": "<pub>"}}` object. */
function ed25519PublicKey(key: JsonObject): string | undefined {
  const entries = isObject(key.keys) ? Object.entries(key.keys) : [];
  if (entries.length !== 1) return undefined;
  const [keyId, value] = entries[0]!;
  if (!keyId.startsWith("ed25519:") || typeof value !== "string" || !ED25519_PUBLIC_KEY.test(value)) {
    return undefined;
  }
  return value;
}

interface PendingSignature {
  targetUserId: string;
  targetId: string;
  keyId: string;
  signature: string;
  /** Whose sync learns of it: the owner's device list, or only the signer (user-signing). */
  kind: "own" | "other";
}

function uploadSignatures(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  const body = jsonObjectBody(ctx);
  const failures: Record<string, Record<string, unknown>> = {};
  const pending: PendingSignature[] = [];

  const own = body[caller.userId] ?? {};
  if (!isObject(own)) throw invalidParameter();
  ownSignatures(ctx, caller.userId, own, pending, failures);
  const others = Object.entries(body).filter(([userId]) => userId !== caller.userId);
  otherSignatures(ctx, caller.userId, others, pending, failures);

  // Nothing is stored until the whole body was read: a malformed entry (400) stores nothing.
  const { keys } = ctx.state;
  for (const p of pending) keys.addSignature(p.targetUserId, p.targetId, caller.userId, p.keyId, p.signature);
  if (pending.some((p) => p.kind === "own")) keys.noteDeviceListChange(caller.userId);
  for (const target of new Set(pending.filter((p) => p.kind === "other").map((p) => p.targetUserId))) {
    keys.noteSignatureBy(caller.userId, target);
  }
  return { status: 200, body: { failures } };
}

/** Signatures on the caller's own devices (by their self-signing key) and master key (by devices). */
function ownSignatures(
  ctx: Ctx,
  userId: string,
  signed: Record<string, unknown>,
  pending: PendingSignature[],
  failures: Record<string, Record<string, unknown>>,
): void {
  const targets = Object.entries(signed);
  if (targets.length === 0) return;
  const { keys } = ctx.state;
  const selfSigningKey = keys.crossSigningPublicKey(userId, "self_signing");
  const masterKey = keys.crossSigningPublicKey(userId, "master");
  const setupProblem =
    selfSigningKey === undefined
      ? notFound(`No self_signing key found for ${userId}`)
      : masterKey === undefined
        ? notFound(`No master key found for ${userId}`)
        : ctx.state.keys.deviceIdsWithKeys(userId).length === 0
          ? notFound("No device keys found")
          : undefined;
  if (setupProblem) {
    failures[userId] = Object.fromEntries(targets.map(([id]) => [id, failure(setupProblem)]));
    return;
  }
  for (const [targetId, object] of targets) {
    if (!isObject(object)) throw invalidParameter();
    try {
      const mine = object.signatures;
      const sigs = isObject(mine) ? mine[userId] : undefined;
      if (!isObject(sigs)) throw invalidSignature();
      if (targetId === masterKey) {
        const stored = keys.crossSigningKey(userId, "master", userId)!;
        for (const [signingKeyId, signature] of Object.entries(sigs)) {
          const deviceId = signingKeyId.split(":").slice(1).join(":");
          const device = keys.deviceKeys(userId, deviceId);
          const deviceKeyIds = isObject(device?.keys) ? device.keys : {};
          if (!Object.hasOwn(deviceKeyIds, signingKeyId) || typeof signature !== "string") {
            throw invalidSignature();
          }
          requireSameObject(object, stored);
          pending.push({ targetUserId: userId, targetId, keyId: signingKeyId, signature, kind: "own" });
        }
        continue;
      }
      const sskId = `ed25519:${selfSigningKey}`;
      const signature = sigs[sskId];
      if (signature === undefined) throw invalidSignature();
      const stored = keys.deviceKeys(userId, targetId);
      if (!stored || !ctx.state.accounts.hasDevice(userId, targetId)) throw notFound("Unknown device");
      // Already signed: Synapse skips it, since the signature should be the same.
      if (signatureBy(stored, userId, sskId) !== undefined) continue;
      requireSameObject(object, stored);
      if (typeof signature !== "string") throw invalidSignature();
      pending.push({ targetUserId: userId, targetId, keyId: sskId, signature, kind: "own" });
    } catch (err) {
      if (!(err instanceof MatrixError)) throw err;
      failures[userId] ??= {};
      failures[userId][targetId] = failure(err);
    }
  }
}

/** Signatures on other users' master keys by the caller's user-signing key. */
function otherSignatures(
  ctx: Ctx,
  userId: string,
  targets: [string, unknown][],
  pending: PendingSignature[],
  failures: Record<string, Record<string, unknown>>,
): void {
  if (targets.length === 0) return;
  const { keys } = ctx.state;
  const userSigningKey = keys.crossSigningPublicKey(userId, "user_signing");
  if (userSigningKey === undefined) {
    const problem = failure(notFound(`No user_signing key found for ${userId}`));
    for (const [target, devices] of targets) {
      failures[target] = Object.fromEntries(
        Object.keys(isObject(devices) ? devices : {}).map((d) => [d, problem]),
      );
    }
    return;
  }
  const uskId = `ed25519:${userSigningKey}`;
  for (const [targetUserId, devices] of targets) {
    if (!isObject(devices) || Object.values(devices).some((d) => !isObject(d))) throw invalidParameter();
    let signedId: string | undefined;
    try {
      requireUserId(targetUserId);
      const master = keys.crossSigningKey(targetUserId, "master", userId);
      const masterKey = keys.crossSigningPublicKey(targetUserId, "master");
      if (!master || masterKey === undefined) throw notFound(`No master key found for ${targetUserId}`);
      if (!Object.hasOwn(devices, masterKey)) throw notFound("Unknown device");
      signedId = masterKey;
      const others = Object.keys(devices).filter((id) => id !== masterKey);
      if (others.length > 0) {
        const problem = failure(notFound("Unknown device"));
        failures[targetUserId] = Object.fromEntries(others.map((id) => [id, problem]));
      }
      if (signatureBy(master, userId, uskId) !== undefined) continue;
      const object = devices[masterKey] as JsonObject;
      requireSameObject(object, master);
      const signature = signatureBy(object, userId, uskId);
      if (typeof signature !== "string") throw invalidSignature();
      pending.push({ targetUserId, targetId: masterKey, keyId: uskId, signature, kind: "other" });
    } catch (err) {
      if (!(err instanceof MatrixError)) throw err;
      if (signedId === undefined) {
        failures[targetUserId] = Object.fromEntries(Object.keys(devices).map((id) => [id, failure(err)]));
      } else {
        failures[targetUserId] ??= {};
        failures[targetUserId][signedId] = failure(err);
      }
    }
  }
}

/** The signed object must be the stored one apart from `signatures` and `unsigned` (Synapse `_check_device_signature`). */
function requireSameObject(signed: JsonObject, stored: JsonObject): void {
  if (canonicalJson(stripped(signed)) !== canonicalJson(stripped(stored))) {
    throw new MatrixError(400, "M_UNKNOWN", "Key does not match");
  }
}

function stripped(object: JsonObject): JsonObject {
  const { signatures: _s, unsigned: _u, ...rest } = object;
  return rest;
}

function signatureBy(object: JsonObject, userId: string, keyId: string): unknown {
  const signatures = object.signatures;
  if (!isObject(signatures)) return undefined;
  const byUser = signatures[userId];
  return isObject(byUser) ? byUser[keyId] : undefined;
}

/** A `failures` entry as Synapse's `_exception_to_failure` writes it for a `SynapseError`. */
function failure(err: MatrixError): Record<string, unknown> {
  return { status: err.status, errcode: err.errcode, message: `${err.status}: ${err.error}` };
}

function notFound(message: string): MatrixError {
  return new MatrixError(404, "M_NOT_FOUND", message);
}

function invalidSignature(): MatrixError {
  return new MatrixError(400, "M_INVALID_SIGNATURE", "Invalid signature");
}

function invalidParameter(): MatrixError {
  return new MatrixError(400, "M_INVALID_PARAM", "Invalid parameter");
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export const crossSigningRoutes: Route<ServerState, Profile>[] = [
  // Synapse serves device_signing/upload under v3 only; the mock, like for every route, under r0 too.
  clientRoute("POST", "keys/device_signing/upload", uploadSigningKeys),
  clientRoute("POST", "keys/signatures/upload", uploadSignatures),
];
