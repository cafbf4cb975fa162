import type { MockHomeserver } from "../../../src/testing/index.js";
import { DEHYDRATED_DEVICE_PATH } from "../../../src/testing/routes/dehydration-gate.js";
import type { FetchTarget } from "../support/transports.js";
import { fakePublicKey, type TestDevice } from "./e2ee-test-users.js";

/** Helpers for the MSC3814 route tests, which talk to a mock in-process or over a socket. */

export interface Reply {
  status: number;
  body: Record<string, unknown>;
  /** The raw response text, for answers whose body must be checked byte for byte. */
  text: string;
}

/** A request to `…/dehydrated_device{suffix}` as `who`; `body` is JSON-encoded unless a string. */
export async function dehydrated(
  server: FetchTarget,
  who: Pick<TestDevice, "accessToken"> | undefined,
  method: string,
  suffix = "",
  body?: unknown,
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (who) headers.authorization = `Bearer ${who.accessToken}`;
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
  const res = await server.fetch(`${DEHYDRATED_DEVICE_PATH}${suffix}`, init);
  const text = await res.text();
  return { status: res.status, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>), text };
}

/** `/{device_id}/events` with the id URL-encoded, plus an optional query string. */
export function eventsPath(deviceId: string, query = ""): string {
  return `/${encodeURIComponent(deviceId)}/events${query}`;
}

/**
 * A dehydrated device id as clients make them: the unpadded base64 Curve25519 key, here chosen
 * to contain both `/` and `+` so that encoding mistakes show.
 */
export function dehydratedDeviceId(seed: string): string {
  return `${fakePublicKey(seed).slice(0, 38)}/a+b`;
}

/** A complete PUT body (as crypto-wasm's `keysForUpload` shapes it) for `owner`'s device `deviceId`. */
export function putBody(owner: Pick<TestDevice, "userId">, deviceId: string, seed = "dehydrated") {
  const signer = `ed25519:${deviceId}`;
  const signed = (key: string, fallback = false) => ({
    key,
    ...(fallback ? { fallback: true } : {}),
    signatures: { [owner.userId]: { [signer]: `sig-${key.slice(0, 8)}` } },
  });
  return {
    device_id: deviceId,
    device_data: { algorithm: "org.matrix.msc3814.v2", device_pickle: `pickle-${seed}`, nonce: "n0" },
    initial_device_display_name: "Dehydrated device",
    device_keys: {
      user_id: owner.userId,
      device_id: deviceId,
      algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
      keys: { [`ed25519:${deviceId}`]: fakePublicKey(`${seed}-ed`), [`curve25519:${deviceId}`]: deviceId },
      dehydrated: true,
      signatures: { [owner.userId]: { [signer]: "self-signature" } },
    },
    one_time_keys: {
      "signed_curve25519:AAAAAQ": signed(fakePublicKey(`${seed}-otk1`)),
      "signed_curve25519:AAAAAg": signed(fakePublicKey(`${seed}-otk2`)),
    },
    fallback_keys: { "signed_curve25519:AAAAAw": signed(fakePublicKey(`${seed}-fb`), true) },
  };
}

let transactions = 0;

/** Sends `count` to-device messages `{n}` from `from` to one device of `to` through `sendToDevice`. */
export async function sendToDevice(
  from: TestDevice,
  to: { userId: string; deviceId: string },
  count: number,
  firstN = 1,
): Promise<void> {
  for (let n = firstN; n < firstN + count; n++) {
    const res = await from.call("PUT", `sendToDevice/m.room.encrypted/txn-${++transactions}`, {
      messages: { [to.userId]: { [to.deviceId]: { n } } },
    });
    if (res.status !== 200) throw new Error(`sendToDevice failed with ${res.status}`);
  }
}

/** Queues messages straight into the store: for tests that need thousands. */
export function enqueueMessages(
  mock: MockHomeserver,
  sender: string,
  to: { userId: string; deviceId: string },
  count: number,
  firstN = 1,
): void {
  for (let n = firstN; n < firstN + count; n++) {
    mock.state.toDevice.enqueue(to.userId, to.deviceId, { type: "m.room.encrypted", sender, content: { n } });
  }
}

/** The `n` of each event in a page. */
export function numbers(body: Record<string, unknown>): number[] {
  return (body.events as { content: { n: number } }[]).map((e) => e.content.n);
}
