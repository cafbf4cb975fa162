import type { FakeMatrixHttp, RecordedCall } from "./fake-matrix-http.js";

type Json = Record<string, unknown>;

interface UserKeys {
  devices: Map<string, Json>;
  master?: Json;
  selfSigning?: Json;
  userSigning?: Json;
  oneTimeKeys: Map<string, Map<string, Json>>;
}

/**
 * Just enough of a homeserver's key store for unit tests of the crypto wiring: uploads, queries with
 * merged signatures, claims. Real semantics live in the mock homeserver (`src/testing/`), which the
 * integration tests use; this keeps unit tests free of sockets. One instance is shared by the fake
 * transports of several users, each bound to its own user/device.
 */
export class KeyServer {
  readonly #users = new Map<string, UserKeys>();

  /** Registers the key endpoints on `http`, answering as `userId`/`deviceId`. */
  attach(http: FakeMatrixHttp, userId: string, deviceId: string): FakeMatrixHttp {
    return http
      .on("POST", "/keys/upload", (c) => this.#upload(userId, deviceId, c))
      .on("POST", "/keys/query", (c) => this.#query(userId, c))
      .on("POST", "/keys/claim", (c) => this.#claim(c))
      .on("POST", "/keys/device_signing/upload", (c) => this.#signingKeys(userId, c))
      .on("POST", "/keys/signatures/upload", (c) => this.#signatures(c));
  }

  oneTimeKeyCount(userId: string, deviceId: string): number {
    return this.#user(userId).oneTimeKeys.get(deviceId)?.size ?? 0;
  }

  #user(userId: string): UserKeys {
    let u = this.#users.get(userId);
    if (!u) {
      u = { devices: new Map(), oneTimeKeys: new Map() };
      this.#users.set(userId, u);
    }
    return u;
  }

  #upload(userId: string, deviceId: string, call: RecordedCall) {
    const body = call.body as { device_keys?: Json; one_time_keys?: Record<string, Json> };
    const user = this.#user(userId);
    if (body.device_keys) user.devices.set(deviceId, structuredClone(body.device_keys));
    let otks = user.oneTimeKeys.get(deviceId);
    if (!otks) {
      otks = new Map();
      user.oneTimeKeys.set(deviceId, otks);
    }
    for (const [id, key] of Object.entries(body.one_time_keys ?? {})) otks.set(id, key);
    return { one_time_key_counts: { signed_curve25519: otks.size } };
  }

  #query(callerId: string, call: RecordedCall) {
    const wanted = (call.body as { device_keys: Record<string, string[]> }).device_keys;
    const out = {
      device_keys: {} as Record<string, Record<string, Json>>,
      master_keys: {} as Record<string, Json>,
      self_signing_keys: {} as Record<string, Json>,
      user_signing_keys: {} as Record<string, Json>,
      failures: {},
    };
    for (const [userId, devices] of Object.entries(wanted)) {
      const user = this.#user(userId);
      out.device_keys[userId] = Object.fromEntries(
        [...user.devices].filter(([id]) => devices.length === 0 || devices.includes(id)),
      );
      if (user.master) out.master_keys[userId] = user.master;
      if (user.selfSigning) out.self_signing_keys[userId] = user.selfSigning;
      if (user.userSigning && userId === callerId) out.user_signing_keys[userId] = user.userSigning;
    }
    return out;
  }

  #claim(call: RecordedCall) {
    const wanted = (call.body as { one_time_keys: Record<string, Record<string, string>> }).one_time_keys;
    const out: Record<string, Record<string, Json>> = {};
    for (const [userId, devices] of Object.entries(wanted)) {
      for (const [deviceId, algorithm] of Object.entries(devices)) {
        const otks = this.#user(userId).oneTimeKeys.get(deviceId);
        const first = [...(otks ?? [])].find(([id]) => id.startsWith(`${algorithm}:`));
        if (!first || !otks) continue;
        otks.delete(first[0]);
        out[userId] ??= {};
        out[userId][deviceId] = { [first[0]]: first[1] };
      }
    }
    return { one_time_keys: out, failures: {} };
  }

  #signingKeys(userId: string, call: RecordedCall) {
    const body = call.body as { master_key?: Json; self_signing_key?: Json; user_signing_key?: Json };
    const user = this.#user(userId);
    if (body.master_key) user.master = body.master_key;
    if (body.self_signing_key) user.selfSigning = body.self_signing_key;
    if (body.user_signing_key) user.userSigning = body.user_signing_key;
    return {};
  }

  #signatures(call: RecordedCall) {
    const body = call.body as Record<string, Record<string, { signatures?: Record<string, Json> }>>;
    for (const [userId, byId] of Object.entries(body)) {
      const user = this.#user(userId);
      for (const [id, signed] of Object.entries(byId)) {
        const target =
          user.devices.get(id) ??
          [user.master, user.selfSigning, user.userSigning].find(
            (k) => k && (k.keys as Record<string, string>)[`ed25519:${id}`] === id,
          );
        if (!target) continue;
        target.signatures ??= {};
        const sigs = target.signatures as Record<string, Json>;
        for (const [signer, s] of Object.entries(signed.signatures ?? {})) {
          sigs[signer] = { ...(sigs[signer] ?? {}), ...s };
        }
      }
    }
    return { failures: {} };
  }
}
