import type { FetchTarget } from "../support/transports.js";

/**
 * A logged-in device talking to a mock homeserver, in-process or over a socket (whichever
 * `FetchTarget` it was registered through), for the key, to-device, room and sync route tests.
 */
export interface TestDevice {
  userId: string;
  deviceId: string;
  accessToken: string;
  /** Sends a request as this device; `body` is JSON-encoded unless it is already a string. */
  call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }>;
}

export async function send(
  server: FetchTarget,
  method: string,
  path: string,
  options: { body?: unknown; accessToken?: string } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (options.accessToken) headers.authorization = `Bearer ${options.accessToken}`;
  const init: RequestInit = { method, headers };
  if (options.body !== undefined) {
    init.body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
  }
  const res = await server.fetch(`/_matrix/client/v3/${path}`, init);
  const text = await res.text();
  return { status: res.status, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

function device(server: FetchTarget, userId: string, deviceId: string, accessToken: string): TestDevice {
  return {
    userId,
    deviceId,
    accessToken,
    call: (method, path, body) => send(server, method, path, { body, accessToken }),
  };
}

export async function registerUser(server: FetchTarget, username: string): Promise<TestDevice> {
  const res = await send(server, "POST", "register", {
    body: { username, password: `${username}-password`, auth: { type: "m.login.dummy" } },
  });
  if (res.status !== 200) throw new Error(`register ${username} failed with ${res.status}`);
  const { user_id, device_id, access_token } = res.body as Record<string, string>;
  return device(server, user_id!, device_id!, access_token!);
}

/** A second device of an existing user (`m.login.password`). */
export async function loginDevice(server: FetchTarget, username: string): Promise<TestDevice> {
  const res = await send(server, "POST", "login", {
    body: {
      type: "m.login.password",
      identifier: { type: "m.id.user", user: username },
      password: `${username}-password`,
    },
  });
  if (res.status !== 200) throw new Error(`login ${username} failed with ${res.status}`);
  const { user_id, device_id, access_token } = res.body as Record<string, string>;
  return device(server, user_id!, device_id!, access_token!);
}

/** A 43-character unpadded-base64 string that looks like an Ed25519 or Curve25519 public key. */
export function fakePublicKey(seed: string): string {
  return Buffer.from(seed.padEnd(32, "#").slice(0, 32)).toString("base64").replace(/=+$/, "");
}

export function deviceKeysFor(d: Pick<TestDevice, "userId" | "deviceId">, seed = "device") {
  return {
    user_id: d.userId,
    device_id: d.deviceId,
    algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
    keys: {
      [`ed25519:${d.deviceId}`]: fakePublicKey(`${seed}-ed`),
      [`curve25519:${d.deviceId}`]: fakePublicKey(`${seed}-curve`),
    },
    signatures: { [d.userId]: { [`ed25519:${d.deviceId}`]: "device-self-signature" } },
  };
}

export function signedCurveKey(d: Pick<TestDevice, "userId" | "deviceId">, key: string, fallback = false) {
  return {
    key,
    ...(fallback ? { fallback: true } : {}),
    signatures: { [d.userId]: { [`ed25519:${d.deviceId}`]: `signature-of-${key}` } },
  };
}
