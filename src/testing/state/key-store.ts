import { serverNameOf } from "../user-ids.js";
import { canonicalJson, cloneJson } from "./canonical-json.js";

/**
 * The mock homeserver's end-to-end key storage: device keys, one-time and fallback keys,
 * cross-signing keys, the signatures uploaded for them, and the device-list change stream that
 * `keys/changes` and `/sync` `device_lists` are built from.
 *
 * Like Synapse, nothing here verifies a signature or a key: objects are kept exactly as uploaded
 * (Client-Server spec, "Uploading keys"; Synapse's `upload_keys_for_user` stores the JSON as is).
 * Every method is a map lookup or a walk over only the entries asked for, so a test with many users
 * or keys does not get slower per request.
 */

export type JsonObject = Record<string, unknown>;

/** The three cross-signing keys, by their `usage` (Client-Server spec, "Cross-signing"). */
export type CrossSigningUsage = "master" | "self_signing" | "user_signing";

export interface ClaimedKey {
  /** `<algorithm>:<key id>` exactly as uploaded. */
  keyId: string;
  /** The key as uploaded: a string or a signed key object. */
  key: unknown;
  /** True when no one-time key was left and the device's fallback key was handed out instead. */
  fallback: boolean;
}

/** What a `keys/upload` of one-time keys did. A re-sent identical key is not a conflict. */
export type OneTimeKeyUploadResult = { ok: true; added: number } | { ok: false; conflictingKeyId: string };

/**
 * Which copy of a remote user's device list a change is about, when the mock hosts other servers
 * too (`remote-device-lists.ts`): `"true"`, the list on the user's own server, which its users and
 * those of the other remote servers read; `"cached"`, this server's copy of it, which this
 * server's users read (Synapse serves remote users' keys from `device_lists_remote_cache`). A local
 * user's list has one copy and its changes carry none.
 */
export type DeviceListCopy = "true" | "cached";

/**
 * A change worth waking a long-poll for. `device-list` changes feed `device_lists.changed`;
 * `onlyFor` marks changes only one user is told about (their own user-signing key, signatures
 * they made on other users' master keys — Synapse's "user signature" stream); `copy` marks a
 * change of one copy of a remote user's list (`DeviceListCopy`). `visibleTo` says who may learn
 * of a change.
 */
export type KeyStoreChange =
  | { kind: "device-list"; userId: string; position: number; onlyFor?: string; copy?: DeviceListCopy }
  | { kind: "key-counts"; userId: string; deviceId: string };

export type KeyStoreListener = (change: KeyStoreChange) => void;

interface OneTimeKey {
  key: unknown;
  /** Canonical JSON without `signatures`: Synapse treats a re-upload with other signatures as the same key. */
  identity: string;
}

interface FallbackKey {
  keyId: string;
  key: unknown;
  canonical: string;
  used: boolean;
}

interface DeviceKeysRecord {
  json: JsonObject;
  canonical: string;
}

interface DeviceRecord {
  deviceKeys?: DeviceKeysRecord;
  /** algorithm → key id → key. Map order is upload order, so claims hand out the oldest key first
   * (Synapse ≥ 1.119 does the same, so a client never finds a key it already discarded). */
  oneTimeKeys: Map<string, Map<string, OneTimeKey>>;
  /** algorithm → the one fallback key of that algorithm (a new upload replaces it). */
  fallbackKeys: Map<string, FallbackKey>;
}

interface CrossSigningKeyRecord {
  json: JsonObject;
  canonical: string;
  /** The unpadded-base64 public key; signatures on the key are stored against it. */
  publicKey: string;
}

interface ChangeEntry {
  position: number;
  userId: string;
  onlyFor: string | undefined;
  copy: DeviceListCopy | undefined;
}

export class KeyStore {
  /** This server's name; without one every user is local and changes carry no `copy`. */
  readonly #serverName: string | undefined;
  #devices = new Map<string, Map<string, DeviceRecord>>();
  #crossSigning = new Map<string, Map<CrossSigningUsage, CrossSigningKeyRecord>>();
  /** `targetUser \0 targetId` (a device id or a cross-signing public key) → signer → key id → signature. */
  #signatures = new Map<string, Map<string, Map<string, string>>>();
  #listeners = new Set<KeyStoreListener>();

  #position = 0;
  /** Ascending by position; superseded entries are dropped by `#compact`. */
  #log: ChangeEntry[] = [];
  /** `onlyFor \0 userId` → the newest position at which that change was logged. */
  #latest = new Map<string, number>();
  #workDone = 0;

  /**
   * `serverName` lets the store tell this server's users from remote ones, whose device lists
   * have two copies (`DeviceListCopy`). Without it every user counts as local.
   */
  constructor(options: { serverName?: string } = {}) {
    this.#serverName = options.serverName;
  }

  /** The current device-list stream position; a sync token (`/sync`, `keys/changes`) carries it. */
  get position(): number {
    return this.#position;
  }

  /** How many change-log entries reads have visited so far — tests assert work per read, not time. */
  get workDone(): number {
    return this.#workDone;
  }

  /** Subscribes to changes (long-poll wake-ups); returns the unsubscribe function. */
  onChange(listener: KeyStoreListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // --- device keys --------------------------------------------------------------------------

  /**
   * Stores a device's identity keys. Identical keys (by canonical JSON) change nothing; different
   * keys replace the old ones and count as a device-list change, as Synapse's
   * `set_e2e_device_keys` does — it does not refuse a replacement.
   * @returns whether anything changed.
   */
  setDeviceKeys(userId: string, deviceId: string, deviceKeys: JsonObject): boolean {
    const canonical = canonicalJson(deviceKeys);
    const device = this.#device(userId, deviceId, true);
    if (device.deviceKeys?.canonical === canonical) return false;
    device.deviceKeys = { json: cloneJson(deviceKeys), canonical };
    this.noteDeviceListChange(userId);
    return true;
  }

  /** The device keys as uploaded, with the owner's signatures from `keys/signatures/upload` merged in. */
  deviceKeys(userId: string, deviceId: string): JsonObject | undefined {
    const record = this.#device(userId, deviceId, false)?.deviceKeys;
    if (!record) return undefined;
    // Synapse merges only signatures made by the device's owner (their self-signing key).
    return this.#withSignatures(record.json, userId, deviceId, userId);
  }

  /** Ids of the user's devices that have uploaded device keys. */
  deviceIdsWithKeys(userId: string): string[] {
    const devices = this.#devices.get(userId);
    if (!devices) return [];
    return [...devices].filter(([, d]) => d.deviceKeys !== undefined).map(([id]) => id);
  }

  // --- one-time and fallback keys -------------------------------------------------------------

  /**
   * Adds one-time keys (`<algorithm>:<key id>` → key). Re-sending the same key, even with other
   * signatures, is accepted and adds nothing. A key id that holds a different key is a conflict:
   * `"reject"` refuses the whole batch and stores nothing (Synapse answers 400 for it);
   * `"keep-existing"` skips that key and stores the rest (tuwunel).
   */
  addOneTimeKeys(
    userId: string,
    deviceId: string,
    keys: Record<string, unknown>,
    onConflict: "reject" | "keep-existing" = "reject",
  ): OneTimeKeyUploadResult {
    const device = this.#device(userId, deviceId, true);
    const fresh: [string, string, OneTimeKey][] = [];
    for (const [fullId, key] of Object.entries(keys)) {
      const [algorithm, keyId] = splitKeyId(fullId);
      const identity = oneTimeKeyIdentity(key);
      const existing = device.oneTimeKeys.get(algorithm)?.get(keyId);
      if (existing) {
        if (existing.identity !== identity && onConflict === "reject") {
          return { ok: false, conflictingKeyId: fullId };
        }
        continue;
      }
      fresh.push([algorithm, keyId, { key: cloneJson(key), identity }]);
    }
    for (const [algorithm, keyId, key] of fresh) {
      let byId = device.oneTimeKeys.get(algorithm);
      if (!byId) {
        byId = new Map();
        device.oneTimeKeys.set(algorithm, byId);
      }
      byId.set(keyId, key);
    }
    if (fresh.length > 0) this.#emit({ kind: "key-counts", userId, deviceId });
    return { ok: true, added: fresh.length };
  }

  /**
   * Unclaimed one-time keys per algorithm, only for algorithms that have any. The `keys/upload`
   * route and sync add `signed_curve25519: 0` where the server profile does.
   */
  oneTimeKeyCounts(userId: string, deviceId: string): Record<string, number> {
    const counts: Record<string, number> = {};
    const device = this.#device(userId, deviceId, false);
    for (const [algorithm, byId] of device?.oneTimeKeys ?? []) {
      if (byId.size > 0) counts[algorithm] = byId.size;
    }
    return counts;
  }

  /**
   * Replaces the fallback key of each algorithm given. Re-uploading the current key unchanged
   * keeps its `used` flag, as Synapse does; a new key starts unused.
   */
  setFallbackKeys(userId: string, deviceId: string, keys: Record<string, unknown>): void {
    const device = this.#device(userId, deviceId, true);
    let changed = false;
    for (const [fullId, key] of Object.entries(keys)) {
      const [algorithm] = splitKeyId(fullId);
      const canonical = canonicalJson(key);
      if (device.fallbackKeys.get(algorithm)?.canonical === canonical) continue;
      device.fallbackKeys.set(algorithm, { keyId: fullId, key: cloneJson(key), canonical, used: false });
      changed = true;
    }
    if (changed) this.#emit({ kind: "key-counts", userId, deviceId });
  }

  /** Algorithms whose fallback key has not been handed out yet (`device_unused_fallback_key_types`). */
  unusedFallbackKeyTypes(userId: string, deviceId: string): string[] {
    const device = this.#device(userId, deviceId, false);
    return [...(device?.fallbackKeys ?? [])].filter(([, k]) => !k.used).map(([algorithm]) => algorithm);
  }

  /**
   * Claims one key of `algorithm` for a device: the oldest one-time key, which is removed; when
   * none is left, the fallback key, which is marked used and stays claimable (Client-Server spec,
   * `POST /keys/claim`). `undefined` when the device has neither.
   */
  claimKey(userId: string, deviceId: string, algorithm: string): ClaimedKey | undefined {
    const device = this.#device(userId, deviceId, false);
    if (!device) return undefined;
    const byId = device.oneTimeKeys.get(algorithm);
    const oldest = byId?.entries().next();
    if (byId && oldest && !oldest.done) {
      const [keyId, otk] = oldest.value;
      byId.delete(keyId);
      this.#emit({ kind: "key-counts", userId, deviceId });
      return { keyId: `${algorithm}:${keyId}`, key: cloneJson(otk.key), fallback: false };
    }
    const fallback = device.fallbackKeys.get(algorithm);
    if (!fallback) return undefined;
    if (!fallback.used) {
      fallback.used = true;
      this.#emit({ kind: "key-counts", userId, deviceId });
    }
    return { keyId: fallback.keyId, key: cloneJson(fallback.key), fallback: true };
  }

  // --- cross-signing ---------------------------------------------------------------------------

  /**
   * Stores cross-signing keys (already checked by the route). Master and self-signing changes are
   * device-list changes everyone sharing a room sees; a user-signing key change only its owner is
   * told about (Synapse's `upload_signing_keys_for_user`).
   */
  setCrossSigningKeys(userId: string, keys: Partial<Record<CrossSigningUsage, JsonObject>>): void {
    let byUsage = this.#crossSigning.get(userId);
    if (!byUsage) {
      byUsage = new Map();
      this.#crossSigning.set(userId, byUsage);
    }
    let publicChange = false;
    let privateChange = false;
    for (const usage of ["master", "self_signing", "user_signing"] as const) {
      const json = keys[usage];
      if (!json) continue;
      const canonical = canonicalJson(json);
      if (byUsage.get(usage)?.canonical === canonical) continue;
      byUsage.set(usage, { json: cloneJson(json), canonical, publicKey: crossSigningPublicKey(json) ?? "" });
      if (usage === "user_signing") privateChange = true;
      else publicChange = true;
    }
    if (publicChange) this.noteDeviceListChange(userId);
    if (privateChange) this.#logChange(userId, userId);
  }

  /** Whether the stored key of `usage` equals `json` exactly (so re-sending it needs no UIA). */
  hasSameCrossSigningKey(userId: string, usage: CrossSigningUsage, json: unknown): boolean {
    return this.#crossSigning.get(userId)?.get(usage)?.canonical === canonicalJson(json);
  }

  /**
   * A cross-signing key as `viewer` sees it: as uploaded, plus the signatures `viewer` made on it
   * through `keys/signatures/upload` (Synapse shows each querier only their own such signatures).
   */
  crossSigningKey(userId: string, usage: CrossSigningUsage, viewer: string): JsonObject | undefined {
    const record = this.#crossSigning.get(userId)?.get(usage);
    if (!record) return undefined;
    return this.#withSignatures(record.json, userId, record.publicKey, viewer);
  }

  /**
   * A cross-signing key exactly as uploaded, without anyone's later signatures: what a server sends
   * of it over federation (Synapse's `query_user_devices` reads it with no `from_user_id`).
   */
  crossSigningKeyAsUploaded(userId: string, usage: CrossSigningUsage): JsonObject | undefined {
    const record = this.#crossSigning.get(userId)?.get(usage);
    return record ? cloneJson(record.json) : undefined;
  }

  /**
   * A copy of `json` — a key of `targetUserId` identified by `targetId` (device id or public key) —
   * with the signatures `signer` made on it merged in, as `crossSigningKey` merges them; for keys
   * served from a copy rather than from this store's own records.
   */
  withSignaturesBy(json: JsonObject, targetUserId: string, targetId: string, signer: string): JsonObject {
    return this.#withSignatures(json, targetUserId, targetId, signer);
  }

  /** The unpadded-base64 public part of a stored cross-signing key. */
  crossSigningPublicKey(userId: string, usage: CrossSigningUsage): string | undefined {
    return this.#crossSigning.get(userId)?.get(usage)?.publicKey;
  }

  // --- signatures ------------------------------------------------------------------------------

  /**
   * Records a signature by `signerUserId` (key `signerKeyId`) on a device or a cross-signing key of
   * `targetUserId` (`targetId` is the device id or the key's public part, as in Synapse's table).
   * The caller decides which change to announce; see `noteDeviceListChange` and `noteSignatureBy`.
   */
  addSignature(
    targetUserId: string,
    targetId: string,
    signerUserId: string,
    signerKeyId: string,
    signature: string,
  ): void {
    const target = `${targetUserId}\u0000${targetId}`;
    let bySigner = this.#signatures.get(target);
    if (!bySigner) {
      bySigner = new Map();
      this.#signatures.set(target, bySigner);
    }
    let byKey = bySigner.get(signerUserId);
    if (!byKey) {
      byKey = new Map();
      bySigner.set(signerUserId, byKey);
    }
    byKey.set(signerKeyId, signature);
  }

  // --- device lifecycle and the change stream --------------------------------------------------

  /**
   * Forgets everything about a deleted device: its keys, one-time and fallback keys, and the
   * signatures on it. The device-list change itself is announced by the caller
   * (`noteDeviceListChange`), which also runs when a device is created.
   */
  deleteDevice(userId: string, deviceId: string): void {
    const devices = this.#devices.get(userId);
    if (devices?.delete(deviceId) && devices.size === 0) this.#devices.delete(userId);
    this.#signatures.delete(`${userId}\u0000${deviceId}`);
  }

  /**
   * Logs a change of `userId`'s device list (new, deleted or re-keyed device, new master key). For
   * a remote user this is their true list; this server's users hear of it only once their server's
   * copy changes (`noteCachedDeviceListChange`).
   */
  noteDeviceListChange(userId: string): number {
    return this.#logChange(userId, undefined, this.#isRemote(userId) ? "true" : undefined);
  }

  /**
   * Logs that this server's cached copy of remote user `userId`'s device list changed (a federated
   * update arrived, or a resync found something new): what this server's users see in
   * `device_lists.changed`, as Synapse's `notify_device_update` tells them.
   */
  noteCachedDeviceListChange(userId: string): number {
    return this.#logChange(userId, undefined, "cached");
  }

  /** Whether `viewer` may learn of a device-list change (besides sharing a room with its user). */
  visibleTo(change: Extract<KeyStoreChange, { kind: "device-list" }>, viewer: string): boolean {
    if (change.onlyFor !== undefined && change.onlyFor !== viewer) return false;
    return change.copy === undefined || change.copy === this.#copyReadBy(viewer, change.userId);
  }

  /**
   * Logs that `signerUserId` signed `targetUserId`'s keys with their user-signing key: only the
   * signer sees `targetUserId` in `device_lists.changed` for it (Synapse's user-signature stream).
   */
  noteSignatureBy(signerUserId: string, targetUserId: string): number {
    return this.#logChange(targetUserId, signerUserId);
  }

  /**
   * Users whose device list or cross-signing keys changed after stream position `from`, as `viewer`
   * may learn of them (changes marked for another user are left out). Visits only log entries
   * after `from`. `deviceListDelta` narrows the result to users `viewer` shares a room with.
   */
  changedUsersSince(viewer: string, from: number): string[] {
    const changed = new Set<string>();
    for (let i = firstAfter(this.#log, from); i < this.#log.length; i++) {
      const entry = this.#log[i]!;
      this.#workDone++;
      if (entry.onlyFor !== undefined && entry.onlyFor !== viewer) continue;
      if (entry.copy !== undefined && entry.copy !== this.#copyReadBy(viewer, entry.userId)) continue;
      if (this.#latest.get(changeKey(entry.userId, entry.onlyFor, entry.copy)) !== entry.position) continue;
      changed.add(entry.userId);
    }
    return [...changed];
  }

  // --- internals -------------------------------------------------------------------------------

  #device(userId: string, deviceId: string, create: true): DeviceRecord;
  #device(userId: string, deviceId: string, create: false): DeviceRecord | undefined;
  #device(userId: string, deviceId: string, create: boolean): DeviceRecord | undefined {
    let devices = this.#devices.get(userId);
    if (!devices) {
      if (!create) return undefined;
      devices = new Map();
      this.#devices.set(userId, devices);
    }
    let device = devices.get(deviceId);
    if (!device && create) {
      device = { oneTimeKeys: new Map(), fallbackKeys: new Map() };
      devices.set(deviceId, device);
    }
    return device;
  }

  #withSignatures(json: JsonObject, targetUserId: string, targetId: string, signer: string): JsonObject {
    const copy = cloneJson(json);
    const extra = this.#signatures.get(`${targetUserId}\u0000${targetId}`)?.get(signer);
    if (!extra || extra.size === 0) return copy;
    const signatures = isObject(copy.signatures) ? copy.signatures : {};
    const mine = isObject(signatures[signer]) ? signatures[signer] : {};
    for (const [keyId, signature] of extra) mine[keyId] = signature;
    signatures[signer] = mine;
    copy.signatures = signatures;
    return copy;
  }

  #logChange(userId: string, onlyFor: string | undefined, copy?: DeviceListCopy): number {
    const position = ++this.#position;
    this.#log.push({ position, userId, onlyFor, copy });
    this.#latest.set(changeKey(userId, onlyFor, copy), position);
    this.#compact();
    const change: KeyStoreChange = { kind: "device-list", userId, position };
    if (onlyFor !== undefined) change.onlyFor = onlyFor;
    if (copy !== undefined) change.copy = copy;
    this.#emit(change);
    return position;
  }

  #isRemote(userId: string): boolean {
    return this.#serverName !== undefined && serverNameOf(userId) !== this.#serverName;
  }

  /** The copy of `userId`'s list `viewer` reads: this server's users read remote users' cached copy. */
  #copyReadBy(viewer: string, userId: string): DeviceListCopy | undefined {
    if (!this.#isRemote(userId)) return undefined;
    return this.#isRemote(viewer) ? "true" : "cached";
  }

  /** Drops superseded log entries once they are the majority, so the log stays O(distinct changes). */
  #compact(): void {
    if (this.#log.length < 64 || this.#log.length < 2 * this.#latest.size) return;
    this.#log = this.#log.filter(
      (e) => this.#latest.get(changeKey(e.userId, e.onlyFor, e.copy)) === e.position,
    );
  }

  #emit(change: KeyStoreChange): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(change);
      } catch {
        // A failing listener (a closed long-poll) must not break the write that triggered it.
      }
    }
  }
}

/** Splits `<algorithm>:<key id>`; routes reject ids without exactly one colon before calling in. */
export function splitKeyId(fullId: string): [algorithm: string, keyId: string] {
  const colon = fullId.indexOf(":");
  return colon < 0 ? [fullId, ""] : [fullId.slice(0, colon), fullId.slice(colon + 1)];
}

/** The public key of a cross-signing key object: the value of its single `keys` entry. */
export function crossSigningPublicKey(json: JsonObject): string | undefined {
  const keys = json.keys;
  if (!isObject(keys)) return undefined;
  const values = Object.values(keys);
  return values.length === 1 && typeof values[0] === "string" ? values[0] : undefined;
}

function oneTimeKeyIdentity(key: unknown): string {
  if (!isObject(key)) return canonicalJson(key);
  const { signatures: _ignored, ...rest } = key;
  return canonicalJson(rest);
}

function changeKey(userId: string, onlyFor: string | undefined, copy: DeviceListCopy | undefined): string {
  return `${onlyFor ?? ""}\u0000${copy ?? ""}\u0000${userId}`;
}

/** Index of the first entry with `position > from` (binary search; the log is ascending). */
function firstAfter(log: readonly ChangeEntry[], from: number): number {
  let lo = 0;
  let hi = log.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (log[mid]!.position <= from) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
