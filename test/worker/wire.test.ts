import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { DrainError, isDrainError } from "../../src/dehydration/drain/errors.js";
import { AbortError } from "../../src/errors/abort-error.js";
import { MatrixApiError } from "../../src/errors/matrix-api-error.js";
import { isSdkError, SdkError } from "../../src/errors/sdk-error.js";
import { isRoomError, RoomError } from "../../src/rooms/room-errors.js";
import { fromWireError, toWireError } from "../../src/worker/wire-error.js";
import {
  CALLBACK,
  HANDLE,
  isHandleMarker,
  markOutgoing,
  markResult,
  rehideKeys,
  restoreIncoming,
  SIGNAL,
} from "../../src/worker/wire-values.js";

/** Through a real structured clone, as `postMessage` copies it. */
const across = <T>(value: T): T => structuredClone(value);

describe("errors across a thread", () => {
  it("keep their class, name, code, details and cause", () => {
    const cause = new MatrixApiError({
      status: 429,
      errcode: "M_LIMIT_EXCEEDED",
      error: "slow down",
      retryAfterMs: 1500,
      softLogout: false,
      kind: "rate_limited",
      method: "GET",
      path: "/_matrix/client/v3/sync",
      data: { errcode: "M_LIMIT_EXCEEDED" },
    } as never);
    const error = new DrainError("fetch_failed", "the drain could not fetch a page", {
      cause,
      details: { deviceId: "DEHYDRATED", cursor: "c1", pages: 2, events: 10, roomKeys: 3 },
    });
    const rebuilt = fromWireError(across(toWireError(error))) as DrainError;
    expect(rebuilt).toBeInstanceOf(DrainError);
    expect(rebuilt).toBeInstanceOf(SdkError);
    expect(rebuilt).toBeInstanceOf(Error);
    expect(isDrainError(rebuilt) && isSdkError(rebuilt)).toBe(true);
    expect(rebuilt).toMatchObject({ name: "DrainError", code: "fetch_failed", message: error.message });
    expect(rebuilt.details).toEqual(error.details);
    expect(rebuilt.stack).toBe(error.stack);
    const rebuiltCause = rebuilt.cause as MatrixApiError;
    expect(rebuiltCause).toBeInstanceOf(MatrixApiError);
    expect(rebuiltCause).toMatchObject({ status: 429, errcode: "M_LIMIT_EXCEEDED", retryAfterMs: 1500 });
  });

  it("rebuild every class by name; foreign errors stay plain Errors; thrown non-errors stay values", () => {
    const room = fromWireError(across(toWireError(new RoomError("sharing_refused", "no", {}))));
    expect(isRoomError(room) && room instanceof RoomError).toBe(true);
    expect(fromWireError(across(toWireError(new AbortError("stopped"))))).toBeInstanceOf(AbortError);
    const foreign = Object.assign(new Error("ECONNREFUSED 127.0.0.1"), { code: "ECONNREFUSED" });
    const plain = fromWireError(across(toWireError(foreign))) as Error & { code: string };
    expect(plain.constructor).toBe(Error);
    expect(plain.code).toBe("ECONNREFUSED");
    expect(isSdkError(plain)).toBe(false);
    // crypto-wasm throws objects that are no Errors, their fields getters on the prototype.
    class MegolmDecryptionError {
      get code() {
        return 6;
      }
      get description() {
        return "the session is unknown";
      }
      free() {}
    }
    const wasm = fromWireError(across(toWireError(new MegolmDecryptionError()))) as Error & { code: number };
    expect(wasm).toBeInstanceOf(Error);
    expect(wasm).toMatchObject({ name: "MegolmDecryptionError", code: 6, message: "the session is unknown" });
    expect(fromWireError(across(toWireError({ reason: "x" })))).toMatchObject({ name: "Error", reason: "x" });
    expect(fromWireError(across(toWireError("just a string")))).toBe("just a string");
    expect(fromWireError(across(toWireError(42)))).toBe(42);
  });

  it("drop what cannot be data (functions, class instances) rather than fail the clone", () => {
    const error = Object.assign(new SdkError("invalid_argument", "bad"), {
      callback: () => 1,
      when: new Date(0),
    });
    const wire = toWireError(error);
    expect(() => structuredClone(wire)).not.toThrow();
    expect(Object.keys(wire.fields).sort()).toEqual(["code", "details"]);
  });
});

describe("values across a thread", () => {
  it("mark callbacks and signals anywhere in plain data, without changing the caller's objects", () => {
    const fn = async () => "ok";
    const signal = new AbortController().signal;
    const args = [{ nested: { authCallback: fn, list: [fn] }, signal }, 5, "x"];
    let n = 0;
    const marked = markOutgoing(
      args,
      () => ({ [CALLBACK]: ++n }),
      () => ({ [SIGNAL]: ++n }),
    );
    expect(across(marked)).toEqual([
      { nested: { authCallback: { [CALLBACK]: 1 }, list: [{ [CALLBACK]: 2 }] }, signal: { [SIGNAL]: 3 } },
      5,
      "x",
    ]);
    expect((args[0] as { nested: { authCallback: unknown } }).nested.authCallback).toBe(fn);
  });

  it("restore markers into callables and signals on the other side", async () => {
    const controller = new AbortController();
    const restored = restoreIncoming(
      across([{ cb: { [CALLBACK]: 7 }, signal: { [SIGNAL]: 8 } }]),
      (id) =>
        async (...a: unknown[]) => ({ id, a }),
      () => controller.signal,
    ) as [{ cb: (...a: unknown[]) => Promise<unknown>; signal: AbortSignal }];
    expect(await restored[0].cb(1, 2)).toEqual({ id: 7, a: [1, 2] });
    expect(restored[0].signal).toBe(controller.signal);
  });

  it("turn a result with methods into a handle, and leave data alone", () => {
    const extension = { request: async () => ({}), receive: async () => [] };
    const marked = markResult(extension, (_object, methods) => {
      expect(methods).toEqual(["request", "receive"]);
      return 3;
    });
    expect(isHandleMarker(across(marked))).toBe(true);
    expect(marked).toEqual({ [HANDLE]: 3, methods: ["request", "receive"] });
    expect(markResult({ a: 1 }, () => 0)).toEqual({ a: 1 });
    expect(markResult([1, 2], () => 0)).toEqual([1, 2]);
  });

  it("give keys that crossed back their non-printing form", () => {
    const bytes = new Uint8Array(32).fill(7);
    const result = across({
      recoveryKey: "EsT0 abcd",
      secretStorageKey: { keyId: "k1", key: bytes },
    });
    rehideKeys(result);
    const key = result.secretStorageKey;
    expect(String(key)).toBe("SecretStorageKey(k1)");
    expect(JSON.stringify(result)).toBe('{"recoveryKey":"EsT0 abcd","secretStorageKey":{"keyId":"k1"}}');
    expect(inspect(result)).not.toContain("7, 7");
    expect(key.key).toEqual(bytes);
  });
});
